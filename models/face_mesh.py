"""MediaPipe's 468-point face-landmark network in torch, weights read straight from face_landmark.tflite.

The tflite subgraph (NHWC, fp16 weights behind DEQUANTIZE ops) is replayed operator by operator in NCHW by
models/tflite_graph.py, so the module is differentiable with respect to its input image while its own weights
stay frozen. Input is [0, 1] RGB, as MediaPipe feeds it (ImageToTensorCalculator, float range 0..1); [0, 1]
also gives the clearest negative face logits on non-faces (about -7 against -0.2 for [-1, 1]). The face output
is a logit: MediaPipe applies a sigmoid and keeps the face when the score passes 0.5.
"""

from __future__ import annotations

import os

import numpy as np
import torch
import torch.nn.functional as F

from models.tflite_graph import TFLiteNet
from models.weights import mediapipe_asset


class FaceMeshNet(TFLiteNet):
    """MediaPipe's 468-point face-landmark network, weights read from face_landmark.tflite."""

    input_size = 192

    def __init__(self, tflite_path: str | os.PathLike | None = None):
        super().__init__(tflite_path or mediapipe_asset("face_landmark.tflite"))
        # The two outputs told apart by size: 1404 = 468 x 3 landmark coordinates, 1 = face logit.
        outputs = {int(np.prod(self.output_shapes[name])): i for name, i in self.output_indices.items()}
        self.landmark_index, self.logit_index = outputs[468 * 3], outputs[1]

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, 3, 192, 192) RGB in [0, 1] -> landmarks (B, 468, 3) in crop pixels, face logit (B,)."""
        size = self.input_size
        if images.ndim != 4 or tuple(images.shape[1:]) != (3, size, size):
            raise ValueError(
                f"FaceMeshNet expects images of shape (B, 3, {size}, {size}), float RGB in [0, 1]; "
                f"got {tuple(images.shape)}"
            )
        values = self.run(images)  # [0, 1] is what the net expects: no normalisation
        return values[self.landmark_index].reshape(-1, 468, 3), values[self.logit_index].reshape(-1)


# First-pass square (left, top, side) around the face of skimage.data.astronaut(), in its 512 x 512 pixels;
# chosen by hand, face logit 21.4 there.
ASTRONAUT_BOX = (130.0, 40.0, 180.0)
# MediaPipe's landmarks-to-ROI step: the square on the landmarks' bounding box, enlarged 1.5x.
ROI_SCALE = 1.5


def crop_square(image: np.ndarray, box: tuple[float, float, float]) -> torch.Tensor:
    """Bilinear crop of a uint8 HxWx3 RGB image to the square (left, top, side) -> (3, 192, 192) in [0, 1]."""
    left, top, side = box
    height, width = image.shape[:2]
    centres = (torch.arange(FaceMeshNet.input_size, dtype=torch.float64) + 0.5) * side / FaceMeshNet.input_size
    # Continuous coordinates (image edge at 0) mapped so the image spans [-1, 1], as align_corners=False reads them.
    grid_y, grid_x = torch.meshgrid(2 * (top + centres) / height - 1, 2 * (left + centres) / width - 1, indexing="ij")
    pixels = torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255
    grid = torch.stack([grid_x, grid_y], dim=-1)[None].float()
    # Border replication, as MediaPipe's cropping does for boxes that leave the image.
    return F.grid_sample(pixels, grid, mode="bilinear", padding_mode="border", align_corners=False)[0]


def landmarks_to_box(points: np.ndarray) -> tuple[float, float, float]:
    """The next crop, MediaPipe-style but axis-aligned: a square on the points' box, ROI_SCALE x its long side."""
    low, high = points[:, :2].min(0), points[:, :2].max(0)
    side = ROI_SCALE * float((high - low).max())
    return float(low[0] + high[0] - side) / 2, float(low[1] + high[1] - side) / 2, side


def image_landmarks(net: FaceMeshNet, image: np.ndarray, box: tuple[float, float, float]) -> np.ndarray:
    """(468, 3) landmarks of the face in a square box of a uint8 image: x, y in image pixels, z scaled like x."""
    with torch.no_grad():
        landmarks = net(crop_square(image, box)[None].to(net.ops[0].weight.device))[0][0].double().cpu().numpy()
    left, top, side = box
    return landmarks * side / net.input_size + np.array([left, top, 0.0])


def astronaut_landmarks() -> np.ndarray:
    """(468, 3) float32 landmarks of skimage.data.astronaut()'s face: x, y in its 512 x 512 pixels, z scaled like x.

    One pass on ASTRONAUT_BOX, then one on the box its landmarks give (landmarks_to_box). Coordinates are
    continuous, MediaPipe's way: the image's left edge is x = 0, so pixel (row i, column j) is centred at
    (j + 0.5, i + 0.5).
    """
    from skimage import data  # bundled with scikit-image, never downloaded

    net, image = FaceMeshNet(), data.astronaut()
    first = image_landmarks(net, image, ASTRONAUT_BOX)
    return image_landmarks(net, image, landmarks_to_box(first)).astype(np.float32)
