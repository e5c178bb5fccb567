"""Frozen real-face evidence for a parameter reader: landmark mesh, identity descriptor and region colours.

NOT in the paper (issue 13 item 2). The field's working systems regress game parameters from frozen networks
pretrained on real faces with a small per-game head; FaceFeatures is that frozen part, built from the networks we
ship offline (models/weights.py). It maps template-aligned faces (B, 3, S, S) RGB in [0, 1], any S, to (B, D):

| group | what | width |
|---|---|---|
| `mesh` | MediaPipe's 468 3D landmarks, pose removed by Procrustes (face_geometry.LandmarkGeometry) | 1404 |
| `identity` | dlib's ResNet-34 face descriptor (models.dlib_resnet.DlibFaceDescriptor) | 128 |
| `colour` | CIELAB mean and std of 5 landmark-placed regions: skin, hair, iris, brows, lips (REGIONS) | 30 |

`mesh` and `colour` share one landmark-net pass. Every weight is a non-persistent buffer (nothing trains, nothing
enters a checkpoint) and the module stays in eval mode whatever a parent asks.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from models.dlib_resnet import DlibFaceDescriptor
from models.face_geometry import LANDMARK_CROP_CENTRE, LANDMARK_CROP_SIDE, LandmarkGeometry, square_crop_to_template
from models.face_mesh import FaceMeshNet
from models.modes import AlwaysEval

GROUP_WIDTHS = {"mesh": 468 * 3, "identity": 128, "colour": 5 * 6}
GROUPS = tuple(GROUP_WIDTHS)


def group_columns(groups: Sequence[str]) -> dict[str, slice]:
    """Where each of `groups` sits in FaceFeatures(groups)'s output: the groups concatenated in GROUPS order."""
    columns, start = {}, 0
    for group in (g for g in GROUPS if g in groups):
        columns[group] = slice(start, start + GROUP_WIDTHS[group])
        start += GROUP_WIDTHS[group]
    return columns


# MediaPipe landmark indices (game/data/face_mesh_connections.csv names the contours they come from).
_CHEEKS = (50, 101, 118, 123, 205, 280, 330, 347, 352, 425)
_FOREHEAD = (151, 108, 337, 69, 299)
_OVAL_TOP = (103, 67, 109, 10, 338, 297, 332)  # FACE_OVAL's upper edge (its temple points push into the backdrop)
_NOSE_BRIDGE = 168  # between the eyes: the centre that the hair samples are pushed away from
_EYES = (
    (33, 133, (7, 163, 144, 145, 153, 154, 155, 133, 173, 157, 158, 159, 160, 161, 246, 33)),
    (263, 362, (249, 390, 373, 374, 380, 381, 382, 362, 398, 384, 385, 386, 387, 388, 466, 263)),
)
_BROWS = (
    (70, 63, 105, 66, 107, 300, 293, 334, 296, 336),
    (46, 53, 52, 65, 55, 276, 283, 282, 295, 285),
)  # upper, lower
_LIPS = (
    (185, 40, 39, 37, 0, 267, 269, 270, 409, 146, 91, 181, 84, 17, 314, 405, 321, 375),  # outer contour
    (191, 80, 81, 82, 13, 312, 311, 310, 415, 95, 88, 178, 87, 14, 317, 402, 318, 324),  # inner, point for point
)
HAIR_STEPS = (0.15, 0.3)  # hair samples: an oval-top point p pushed to p + t (p - nose bridge)
IRIS_SPREAD = (-0.12, 0.0, 0.12)  # iris samples: eye centre + s (outer corner - inner corner)


def _weights(*terms: tuple[float, int]) -> np.ndarray:
    """One sample point as weights over the 468 landmarks: sum of weight x landmark."""
    row = np.zeros(468)
    for weight, index in terms:
        row[index] += weight
    return row


def colour_sample_weights() -> tuple[np.ndarray, list[str]]:
    """(P, 468) weights placing each colour sample point as a fixed combination of landmarks, and each point's region.

    skin: cheek and mid-forehead landmarks; hair: the face oval's top edge pushed outwards, away from the nose
    bridge (above the forehead, where the hair cap is); iris: each eye contour's centre and two points along the eye;
    brows: midpoints of the upper and lower brow lines; lips: midpoints of the outer and inner lip contours.
    """
    rows, regions = [], []

    def add(region: str, *terms: tuple[float, int]) -> None:
        rows.append(_weights(*terms))
        regions.append(region)

    for index in _CHEEKS + _FOREHEAD:
        add("skin", (1.0, index))
    for step in HAIR_STEPS:
        for index in _OVAL_TOP:
            add("hair", (1.0 + step, index), (-step, _NOSE_BRIDGE))
    for outer, inner, contour in _EYES:
        for spread in IRIS_SPREAD:
            add("iris", *((1.0 / len(contour), i) for i in contour), (spread, outer), (-spread, inner))
    for upper, lower in zip(*_BROWS):
        add("brows", (0.5, upper), (0.5, lower))
    for outer, inner in zip(*_LIPS):
        add("lips", (0.5, outer), (0.5, inner))
    return np.stack(rows), regions


REGIONS = ("skin", "hair", "iris", "brows", "lips")


def rgb_to_lab(rgb: torch.Tensor) -> torch.Tensor:
    """sRGB in [0, 1] (..., 3) -> CIELAB (..., 3) under D65: L in [0, 100], a and b about [-100, 100]."""
    rgb = rgb.clamp(0.0, 1.0)
    linear = torch.where(rgb <= 0.04045, rgb / 12.92, ((rgb + 0.055) / 1.055) ** 2.4)
    to_xyz = rgb.new_tensor([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]])
    xyz = linear @ to_xyz.T / rgb.new_tensor([0.95047, 1.0, 1.08883])
    delta = 6.0 / 29.0
    f = torch.where(xyz > delta**3, xyz.clamp_min(delta**3) ** (1.0 / 3.0), xyz / (3 * delta**2) + 4.0 / 29.0)
    fx, fy, fz = f.unbind(-1)
    return torch.stack([116.0 * fy - 16.0, 500.0 * (fx - fy), 200.0 * (fy - fz)], -1)


class FaceFeatures(AlwaysEval):
    """Frozen features of template-aligned faces, the chosen groups concatenated in GROUPS order: (B, width)."""

    def __init__(self, groups: Sequence[str] = GROUPS) -> None:
        super().__init__()
        unknown = [g for g in groups if g not in GROUP_WIDTHS]
        if unknown or not groups or len(set(groups)) != len(groups):
            raise ValueError(f"features must be distinct names among {list(GROUPS)}, at least one; got {list(groups)}")
        self.groups = tuple(g for g in GROUPS if g in groups)
        self.width = sum(GROUP_WIDTHS[g] for g in self.groups)
        self.geometry = LandmarkGeometry() if {"mesh", "colour"} & set(groups) else None
        self.identity = DlibFaceDescriptor() if "identity" in groups else None
        weights, regions = colour_sample_weights()
        self.register_buffer("sample_weights", torch.from_numpy(weights).float(), persistent=False)  # (P, 468)
        members = np.array([[r == name for r in regions] for name in REGIONS], np.float32)
        self.register_buffer("region_members", torch.from_numpy(members / members.sum(1, keepdims=True)), False)
        # Landmark-net crop pixel -> template fraction, for coordinates with the crop's edge at 0 (MediaPipe's).
        crop = square_crop_to_template(LANDMARK_CROP_SIDE, LANDMARK_CROP_CENTRE, FaceMeshNet.input_size)
        crop[:, 2] -= crop[:, :2] @ [0.5, 0.5]  # square_crop_to_template counts pixel j centred on j
        self.register_buffer("crop_to_template", torch.from_numpy(crop).float(), persistent=False)

    def colour(self, images: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
        """Per region, the CIELAB mean and std over its sample points: (B, 5 regions x (mean 3, std 3)) = (B, 30)."""
        xy = points[..., :2] @ self.crop_to_template[:, :2].T + self.crop_to_template[:, 2]  # (B, 468, 2) fractions
        samples = self.sample_weights @ xy  # (B, P, 2)
        grid = (2 * samples - 1)[:, None]  # grid_sample(align_corners=False) reads fraction f as 2f - 1
        rgb = F.grid_sample(images, grid, mode="bilinear", padding_mode="border", align_corners=False)[:, :, 0]
        lab = rgb_to_lab(rgb.transpose(1, 2)) / 100.0  # (B, P, 3)
        mean = self.region_members @ lab  # (B, 5, 3)
        variance = self.region_members @ lab.square() - mean.square()
        return torch.cat([mean, variance.clamp_min(0.0).sqrt()], -1).flatten(1)

    @torch.no_grad()
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, S, S) template-aligned RGB in [0, 1] -> (B, width) float32 features; no gradient to anything."""
        images = images.float()
        with torch.autocast(images.device.type, enabled=False):
            parts = {}
            if self.geometry is not None:
                points, _ = self.geometry.landmarks(images)
                if "mesh" in self.groups:
                    parts["mesh"] = self.geometry.pose_free(points)
                if "colour" in self.groups:
                    parts["colour"] = self.colour(images, points)
            if self.identity is not None:
                parts["identity"] = self.identity(images)
            return torch.cat([parts[g].float() for g in self.groups], 1)
