"""MediaPipe's short-range BlazeFace face detector in torch, weights read from face_detection_short_range.tflite.

The network (models/tflite_graph.py) sees a 128 x 128 RGB image in [-1, 1] and scores 896 SSD anchors, each
with a box and 6 keypoints. Everything around it follows MediaPipe 0.10.21's face_detection_short_range graph:
- anchors (SsdAnchorsCalculator): 4 layers with strides 8, 16, 16, 16; layers of one stride share a grid, and
  each layer adds 2 anchors per cell (aspect ratio 1 plus the interpolated scale), so 16x16x2 + 8x8x6 = 896.
  `fixed_anchor_size: true` makes every anchor 1 x 1 with its centre at the cell centre (offset 0.5), so the
  scales never matter;
- decoding (TensorsToDetectionsCalculator): scores are sigmoid(clip(logit, -100, 100)), kept from 0.5;
  box centre, size and keypoints are x / 128 (+ the anchor centre for positions), in x, y, w, h order;
- NMS (NonMaxSuppressionCalculator): MediaPipe's WEIGHTED algorithm at IoU 0.3: each kept face takes the
  score-weighted mean box and keypoints of all candidates overlapping it, and the top candidate's score;
- input (ImageToTensorCalculator): the photo letterboxed (aspect kept, black bars, centred) to 128 x 128.
  MediaPipe resizes bilinearly; we use area averaging when shrinking, which does not alias on large photos.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import cv2
import numpy as np
import torch

from models.modes import AlwaysEval
from models.tflite_graph import TFLiteNet
from models.weights import mediapipe_asset

INPUT_SIZE = 128
STRIDES = (8, 16, 16, 16)
ANCHORS_PER_LAYER = 2  # aspect ratio 1.0 and the interpolated scale (aspect 1.0)
# MediaPipe's FaceKeyPoint order; "right" is the subject's right, the viewer's left.
KEYPOINT_NAMES = ("right_eye", "left_eye", "nose_tip", "mouth_centre", "right_ear_tragion", "left_ear_tragion")


@dataclass
class Detection:
    """One face: score in (0, 1), box (x0, y0, x1, y1) and keypoints (6, 2) in image pixels (edge at 0)."""

    score: float
    box: np.ndarray
    keypoints: np.ndarray


def ssd_anchors() -> torch.Tensor:
    """(896, 2) anchor centres (x, y) in [0, 1] of the 128 px input, in the order of the network's outputs."""
    centres, layer = [], 0
    while layer < len(STRIDES):
        stride, same = STRIDES[layer], 0
        while layer + same < len(STRIDES) and STRIDES[layer + same] == stride:
            same += 1
        cells = -(-INPUT_SIZE // stride)
        y, x = torch.meshgrid(torch.arange(cells), torch.arange(cells), indexing="ij")
        grid = (torch.stack([x, y], -1).reshape(-1, 1, 2).double() + 0.5) / cells
        centres.append(grid.expand(-1, same * ANCHORS_PER_LAYER, 2).reshape(-1, 2))  # y, x, then anchor
        layer += same
    return torch.cat(centres).float()


def box_iou(boxes: torch.Tensor, box: torch.Tensor) -> torch.Tensor:
    """IoU of (N, 4) boxes (x0, y0, x1, y1) with one box."""
    low, high = torch.maximum(boxes[:, :2], box[:2]), torch.minimum(boxes[:, 2:], box[2:])
    inter = (high - low).clamp(min=0).prod(1)
    area = (boxes[:, 2:] - boxes[:, :2]).prod(1)
    return inter / (area + (box[2:] - box[:2]).prod() - inter)


def weighted_nms(scores: torch.Tensor, boxes: torch.Tensor, keypoints: torch.Tensor, iou: float):
    """MediaPipe's WEIGHTED NMS -> [(score, box (4,), keypoints (K, 2))], best first."""
    order = scores.argsort(descending=True)
    scores, boxes, keypoints = scores[order], boxes[order], keypoints[order]
    kept = []
    while len(scores):
        cluster = box_iou(boxes, boxes[0]) > iou  # always holds the top box itself
        weights = scores[cluster] / scores[cluster].sum()
        kept.append(
            (
                float(scores[0]),
                (weights[:, None] * boxes[cluster]).sum(0),
                (weights[:, None, None] * keypoints[cluster]).sum(0),
            )
        )
        scores, boxes, keypoints = scores[~cluster], boxes[~cluster], keypoints[~cluster]
    return kept


def letterbox(image: np.ndarray, size: int = INPUT_SIZE) -> tuple[np.ndarray, float, np.ndarray]:
    """uint8 HxWx3 -> (size x size uint8 with the photo centred between black bars, scale, offset (x, y)).

    A point p of the photo lands at p * scale + offset in the letterboxed image (continuous coordinates).
    """
    height, width = image.shape[:2]
    scale = size / max(height, width)
    new_w, new_h = max(1, round(width * scale)), max(1, round(height * scale))
    shrink = new_w < width or new_h < height
    resized = cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
    out = np.zeros((size, size, 3), np.uint8)
    left, top = (size - new_w) // 2, (size - new_h) // 2
    out[top : top + new_h, left : left + new_w] = resized
    # Per-axis factors of the rounded resize, so the mapping back is exact for the pixels that were drawn.
    return out, np.array([new_w / width, new_h / height]), np.array([left, top], dtype=np.float64)


class BlazeFaceDetector(AlwaysEval):
    """MediaPipe's short-range face detector (faces within ~2 m of the camera), 128 x 128 input."""

    def __init__(self, tflite_path: str | os.PathLike | None = None, min_score: float = 0.5, iou: float = 0.3):
        super().__init__()
        self.net = TFLiteNet(tflite_path or mediapipe_asset("face_detection_short_range.tflite"))
        self.regressor_index = self.net.output_indices["regressors"]  # (1, 896, 16)
        self.logit_index = self.net.output_indices["classificators"]  # (1, 896, 1)
        self.min_score, self.iou = min_score, iou
        self.register_buffer("anchors", ssd_anchors(), persistent=False)

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, 3, 128, 128) RGB in [0, 1] -> raw regressors (B, 896, 16), raw score logits (B, 896)."""
        if images.ndim != 4 or tuple(images.shape[1:]) != (3, INPUT_SIZE, INPUT_SIZE):
            raise ValueError(
                f"BlazeFaceDetector expects images of shape (B, 3, {INPUT_SIZE}, {INPUT_SIZE}), "
                f"float RGB in [0, 1]; got {tuple(images.shape)}"
            )
        values = self.net.run(images * 2 - 1)  # MediaPipe feeds this model [-1, 1]
        return values[self.regressor_index], values[self.logit_index].squeeze(-1)

    def decode(self, regressors: torch.Tensor, logits: torch.Tensor) -> list[list[Detection]]:
        """Raw outputs -> per image, the faces after score threshold and NMS, in [0, 1] input coordinates."""
        scores = torch.sigmoid(logits.clamp(-100, 100))
        raw = regressors.reshape(*regressors.shape[:2], 8, 2) / INPUT_SIZE  # (B, 896, [centre, size, 6 kp], xy)
        centres = raw[:, :, 0] + self.anchors
        boxes = torch.cat([centres - raw[:, :, 1] / 2, centres + raw[:, :, 1] / 2], -1)  # (B, 896, 4)
        keypoints = raw[:, :, 2:] + self.anchors[:, None]  # (B, 896, 6, 2)
        results = []
        for s, b, k in zip(scores, boxes, keypoints):
            keep = s >= self.min_score
            results.append(
                [
                    Detection(score, box.double().cpu().numpy(), kp.double().cpu().numpy())
                    for score, box, kp in weighted_nms(s[keep], b[keep], k[keep], self.iou)
                ]
            )
        return results

    @torch.no_grad()
    def detect(self, photos: list[np.ndarray]) -> list[list[Detection]]:
        """Faces in each uint8 HxWx3 RGB photo, best first, with boxes and keypoints in that photo's pixels."""
        boxed = [letterbox(photo) for photo in photos]
        batch = torch.from_numpy(np.stack([b[0] for b in boxed])).permute(0, 3, 1, 2).float() / 255
        faces = self.decode(*self(batch.to(self.anchors.device)))
        results = []
        for detections, (_, scale, offset) in zip(faces, boxed):

            def to_photo(
                points, offset=offset, scale=scale
            ):  # [0, 1] of the 128 px input -> letterbox pixels -> photo pixels
                return (points.reshape(-1, 2) * INPUT_SIZE - offset) / scale

            results.append([Detection(d.score, to_photo(d.box).reshape(4), to_photo(d.keypoints)) for d in detections])
        return results
