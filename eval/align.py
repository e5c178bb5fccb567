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
from PIL import Image, UnidentifiedImageError

from game.framing import align_to_template, similarity_to_template, warp_photo
from game.topology import loop
from models.face_detector import BlazeFaceDetector
from models.face_mesh import FaceMeshNet

ROI_SCALE = 1.5  # MediaPipe's detection-to-ROI and landmarks-to-ROI enlargement
MESH_PASSES = 2  # detection ROI, then one refinement on the landmarks' own ROI
MIN_FACE_PRESENCE = 0.5  # MediaPipe drops a face whose landmark-net presence score is below this
UPRIGHT_TILT = 45.0  # degrees between a face's eyes-to-mouth line and the photo's down beyond which it is not upright
# An upside-down face fools BlazeFace and the landmark net alike: they find an upright face with the mouth taken for
# the eyes (astronaut turned 180 degrees: detection score 0.60 against 0.92 upright). So a photo turned by 180 degrees
# replaces the photo as it is when its best face scores at least this much higher.
HALF_TURN_MARGIN = 0.1
GREY_SPREAD = 8  # a photo whose pixels' max - min over R, G, B stays within this (99th percentile) is grayscale


@dataclass
class AlignedFace:
    """One face of a photo warped to the template."""

    image: np.ndarray  # (S, S, 3) uint8 RGB, the five points on the template
    points: np.ndarray  # (5, 2) right eye, left eye, nose tip, right and left mouth corner, photo pixels
    score: float  # BlazeFace detection score in (0, 1)
    box: np.ndarray  # (x0, y0, x1, y1) detection box, photo pixels
    landmarks: np.ndarray  # (468, 3) FaceMeshNet landmarks, photo pixels (z scaled like x)
    matrix: np.ndarray  # (2, 3) photo pixels -> aligned pixels (continuous coordinates: centres at +0.5)
    turned: int = 0  # degrees counter-clockwise the photo was turned for the face to be found upright


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
    """A photo file as uint8 HxWx3 RGB (EXIF orientation applied), or ValueError naming the file.

    A damaged file is refused: OpenCV would fill a truncated JPEG with grey and only warn, without the file's name.
    """
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"cannot read {path}: is a folder, not a photo")
    if not path.is_file():
        raise ValueError(f"cannot read {path}: no such file")
    try:
        with Image.open(path) as image:
            image.load()  # decodes every pixel: a truncated or corrupt file fails here
    except UnidentifiedImageError:
        pass  # not a format PIL knows: OpenCV decides below
    except (OSError, SyntaxError, ValueError) as error:  # PIL's errors for corrupt or truncated files
        raise ValueError(f"cannot read {path}: damaged image ({error})") from None
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)  # also turns grey and RGBA files into 3 channels
    if image is None:
        raise ValueError(f"cannot read {path} as an image (damaged, or not an image format OpenCV knows)")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def is_grayscale(photo: np.ndarray) -> bool:
    """Whether a uint8 HxWx3 photo carries no colour: R, G and B agree within GREY_SPREAD nearly everywhere."""
    spread = photo.max(2).astype(np.int16) - photo.min(2)
    return float(np.percentile(spread, 99)) <= GREY_SPREAD


def tilt(face: AlignedFace) -> float:
    """Degrees between the face's eyes-to-mouth direction and the photo's down: 0 upright, 180 upside down."""
    eyes, mouth = face.points[:2].mean(0), face.points[3:].mean(0)
    down = mouth - eyes
    return float(abs(np.degrees(np.arctan2(down[0], down[1]))))


def _turn_back(faces: list[AlignedFace], turns: int, height: int, width: int) -> list[AlignedFace]:
    """Faces found in np.rot90(photo, turns) of a height x width photo, in the photo's own pixels."""
    back = np.eye(3)  # turned-photo pixels -> photo pixels; pixel centres at +0.5 keep it exact
    for k in range(turns):  # a quarter turn counter-clockwise of an image w wide: (x, y) came from (w - y, x)
        w = width if k % 2 == 0 else height
        back = back @ np.array([[0.0, -1.0, w], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    linear, shift = back[:2, :2], back[:2, 2]
    turned = []
    for f in faces:
        corners = np.array([[f.box[0], f.box[1]], [f.box[2], f.box[3]]]) @ linear.T + shift
        landmarks = f.landmarks.copy()
        landmarks[:, :2] = f.landmarks[:, :2] @ linear.T + shift
        matrix = (np.vstack([f.matrix, [0, 0, 1]]) @ np.linalg.inv(back))[:2]
        box = np.concatenate([corners.min(0), corners.max(0)])
        turned.append(AlignedFace(f.image, f.points @ linear.T + shift, f.score, box, landmarks, matrix, 90 * turns))
    return turned


def align_upright(photo: np.ndarray, size: int = 256) -> list[AlignedFace]:
    """align_faces on the photo as it is, or turned by 90, 180 or 270 degrees where that finds the face upright.

    Turns are tried when no face is found, when the best face is tilted by more than UPRIGHT_TILT degrees, and
    always by 180 degrees (an upside-down face is found upright by mistake; see HALF_TURN_MARGIN). Coordinates are
    the photo's own; `turned` says which turn found the faces. [] if no turn finds an upright face.
    """
    height, width = photo.shape[:2]

    def attempt(turns: int) -> list[AlignedFace]:
        found = align_faces(np.ascontiguousarray(np.rot90(photo, turns)), size) if turns else align_faces(photo, size)
        return _turn_back(found, turns, height, width) if found and tilt(found[0]) <= UPRIGHT_TILT else []

    faces = attempt(0)
    half = attempt(2)
    if faces and (not half or half[0].score < faces[0].score + HALF_TURN_MARGIN):
        return faces
    if half:
        return half
    quarter = [found for found in (attempt(1), attempt(3)) if found]
    return max(quarter, key=lambda found: found[0].score) if quarter else []


def align_photo(photo: np.ndarray, source: str, size: int = 256, several: bool = False) -> list[AlignedFace]:
    """align_upright, raising FaceCountError naming `source` when there is no face, or several and not `several`."""
    faces = align_upright(photo, size)
    if not faces:
        # The short-range detector misses faces narrower than about a tenth of the photo's long side.
        raise FaceCountError(
            f"no face found in {source}, upright or turned by 90, 180 or 270 degrees "
            "(a small face in a large photo may be missed: crop closer to the face)"
        )
    if len(faces) > 1 and not several:
        boxes = ", ".join(f"({b[0]:.0f}, {b[1]:.0f}, {b[2]:.0f}, {b[3]:.0f})" for b in (f.box for f in faces))
        raise FaceCountError(
            f"{len(faces)} faces found in {source} at boxes {boxes}: crop the photo to one face, "
            "or pass --all to process each"
        )
    return faces
