"""Photo -> faces warped to the face template (docs/contracts.md section 2), MediaPipe's detect-then-mesh way.

BlazeFace finds each face; its box and eye keypoints give a square region of interest (1.5 x the box, turned
by the eye line), which FaceMeshNet reads at 192 px; a second pass on the ROI of those landmarks (1.5 x
their extent along the eye line) refines them, as MediaPipe's tracking does from frame to frame. The
template's five points come from the 468 landmarks exactly as the game defines them on its head
(game.engine.Game.template_points), and the least-squares similarity to the template warps the photo.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np
import torch

from game.framing import align_to_template, similarity_to_template, warp_photo
from game.topology import loop
from models.face_detector import BlazeFaceDetector
from models.face_mesh import FaceMeshNet

ROI_SCALE = 1.5  # MediaPipe's detection-to-ROI and landmarks-to-ROI enlargement
MESH_PASSES = 2  # detection ROI, then one refinement on the landmarks' own ROI
MIN_FACE_PRESENCE = 0.5  # MediaPipe drops a face whose landmark-net presence score is below this


@dataclass
class AlignedFace:
    """One face of a photo warped to the template."""

    image: np.ndarray  # (S, S, 3) uint8 RGB, the five points on the template
    points: np.ndarray  # (5, 2) right eye, left eye, nose tip, right and left mouth corner, photo pixels
    score: float  # BlazeFace detection score in (0, 1)
    box: np.ndarray  # (x0, y0, x1, y1) detection box, photo pixels
    landmarks: np.ndarray  # (468, 3) FaceMeshNet landmarks, photo pixels (z scaled like x)
    matrix: np.ndarray  # (2, 3) photo pixels -> aligned pixels (continuous coordinates: centres at +0.5)


class FaceCountError(ValueError):
    """A photo without a face, or with several where one was expected."""


@lru_cache(maxsize=1)
def _networks() -> tuple[BlazeFaceDetector, FaceMeshNet]:
    return BlazeFaceDetector(), FaceMeshNet()


def template_points(landmarks: np.ndarray) -> np.ndarray:
    """(5, 2) template points from (468, 2+) MediaPipe landmarks: eye contour means, nose tip 1, mouth 61 and 291.

    MediaPipe names sides by the subject: its RIGHT_EYE is on the viewer's left, the template's first point.
    """
    return np.stack(
        [
            landmarks[loop("RIGHT_EYE"), :2].mean(0),
            landmarks[loop("LEFT_EYE"), :2].mean(0),
            landmarks[1, :2],
            landmarks[61, :2],
            landmarks[291, :2],
        ]
    )


def roi_matrix(centre: np.ndarray, side: float, angle: float, size: int) -> np.ndarray:
    """2x3 photo -> crop similarity for a square ROI (centre, side, angle of its x axis) seen at size x size."""
    cos, sin = np.cos(angle), np.sin(angle)
    rotation = np.array([[cos, sin], [-sin, cos]]) * size / side  # photo offsets -> crop offsets
    return np.hstack([rotation, (size / 2 - rotation @ centre)[:, None]])


def _landmark_roi(landmarks: np.ndarray) -> tuple[np.ndarray, float, float]:
    """(centre, side, angle) of the next ROI: eye corners 33 -> 263 set the angle, extent along it the size."""
    eye_line = landmarks[263, :2] - landmarks[33, :2]
    angle = float(np.arctan2(eye_line[1], eye_line[0]))
    axes = np.array([[np.cos(angle), np.sin(angle)], [-np.sin(angle), np.cos(angle)]])
    local = landmarks[:, :2] @ axes.T
    low, high = local.min(0), local.max(0)
    return axes.T @ ((low + high) / 2), ROI_SCALE * float((high - low).max()), angle


def _mesh(net: FaceMeshNet, photo: np.ndarray, rois: list) -> tuple[np.ndarray, np.ndarray]:
    """Landmarks (N, 468, 3) in photo pixels and face-presence scores (N,) for N ROIs (centre, side, angle)."""
    size = net.input_size
    matrices = [roi_matrix(c, s, a, size) for c, s, a in rois]
    crops = np.stack([warp_photo(photo, m, size) for m in matrices])
    device = net.ops[0].weight.device
    with torch.no_grad():
        landmarks, logits = net(torch.from_numpy(crops).permute(0, 3, 1, 2).float().div(255).to(device))
    landmarks, presence = landmarks.double().cpu().numpy(), torch.sigmoid(logits).cpu().numpy()
    for k, m in enumerate(matrices):  # crop pixels -> photo pixels; z scales like x and y
        scale = np.sqrt(np.linalg.det(m[:, :2]))
        landmarks[k, :, :2] = (landmarks[k, :, :2] - m[:, 2]) @ np.linalg.inv(m[:, :2]).T
        landmarks[k, :, 2] /= scale
    return landmarks, presence


def align_faces(photo: np.ndarray, size: int = 256) -> list[AlignedFace]:
    """Every face in a uint8 HxWx3 RGB photo aligned to the template at size x size, best detection first."""
    if photo.dtype != np.uint8 or photo.ndim != 3 or photo.shape[2] != 3:
        raise ValueError(f"align_faces expects a uint8 HxWx3 RGB photo, got {photo.dtype} {photo.shape}")
    detector, net = _networks()
    detections = detector.detect([photo])[0]
    if not detections:
        return []
    rois = []
    for d in detections:  # MediaPipe's detection ROI: box centre, 1.5 x its long side, eye line level
        eye_line = d.keypoints[1] - d.keypoints[0]
        size_xy = d.box[2:] - d.box[:2]
        rois.append(
            ((d.box[:2] + d.box[2:]) / 2, ROI_SCALE * float(size_xy.max()), float(np.arctan2(eye_line[1], eye_line[0])))
        )
    for _ in range(MESH_PASSES):
        landmarks, presence = _mesh(net, photo, rois)
        rois = [_landmark_roi(lm) for lm in landmarks]
    faces = []
    for d, lm, p in zip(detections, landmarks, presence):
        if p < MIN_FACE_PRESENCE:
            continue
        points = template_points(lm)
        image = align_to_template(photo, points, size)  # the warp training and the benchmarks use
        faces.append(AlignedFace(image, points, d.score, d.box, lm, similarity_to_template(points, size)))
    return faces


def read_photo(path: str | Path) -> np.ndarray:
    """A photo file as uint8 HxWx3 RGB (EXIF orientation applied), or ValueError naming the file."""
    if not Path(path).is_file():
        raise ValueError(f"cannot read {path}: no such file")
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)  # also turns grey and RGBA files into 3 channels
    if image is None:
        raise ValueError(f"cannot read {path} as an image (damaged, or not an image format OpenCV knows)")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def align_photo(photo: np.ndarray, source: str, size: int = 256, several: bool = False) -> list[AlignedFace]:
    """align_faces, raising FaceCountError naming `source` when there is no face, or several and not `several`."""
    faces = align_faces(photo, size)
    if not faces:
        # The short-range detector misses faces narrower than about a tenth of the photo's long side.
        raise FaceCountError(
            f"no face found in {source} (a small face in a large photo may be missed: crop closer to the face)"
        )
    if len(faces) > 1 and not several:
        boxes = ", ".join(f"({b[0]:.0f}, {b[1]:.0f}, {b[2]:.0f}, {b[3]:.0f})" for b in (f.box for f in faces))
        raise FaceCountError(
            f"{len(faces)} faces found in {source} at boxes {boxes}: crop the photo to one face, "
            "or pass --all to process each"
        )
    return faces
