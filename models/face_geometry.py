"""Frozen 3D face-geometry extractors F_3d (paper eq. 9): template-aligned faces -> pose-free shape features.

Every extractor maps (B, 3, S, S) RGB in [0, 1], aligned to the template of docs/contracts.md section 2, at any
S, to (B, D) features. It cuts its own input crop from the template with a fixed similarity (no detection),
keeps its weights frozen (non-persistent buffers: they come from files and never enter a checkpoint), stays in
eval mode whatever a parent asks, and passes gradients through to the image.

- LandmarkGeometry ("landmarks", the offline default): MediaPipe's 468 3D landmarks, similarity-aligned
  (Procrustes) to the game's neutral face so that head pose and face size drop out, as the paper discards pose.
- Deep3DCoefficients ("deep3d", the paper's F_3d): Deep3DFaceRecon_pytorch's identity (80) and expression
  (64) coefficients, from a user-supplied checkpoint.
"""

from __future__ import annotations

import os

import numpy as np
import torch
from torch import nn
from torchvision.models import resnet50

from game.framing import similarity_to_template
from models.extractor import TemplateCrop
from models.face_mesh import FaceMeshNet
from models.modes import AlwaysEval
from models.weights import layout_mismatch, read_state_dict

EXTRACTORS = ("landmarks", "deep3d")


def freeze(module: nn.Module) -> nn.Module:
    """Turn every parameter and buffer into a non-persistent buffer (weights come from files) and switch to eval."""
    for child in module.modules():
        for name, param in list(child.named_parameters(recurse=False)):
            delattr(child, name)
            child.register_buffer(name, param.detach(), persistent=False)
        for name, buffer in list(child.named_buffers(recurse=False)):
            if buffer is not None:
                child.register_buffer(name, buffer, persistent=False)  # re-registering drops persistence
    return module.eval()


def square_crop_to_template(side: float, centre: tuple[float, float], size: int) -> np.ndarray:
    """2x3 affine from the pixel indices of a size x size crop to template fractions, for an axis-aligned square."""
    step = side / size
    # Pixel j covers [j, j + 1) of the crop, so its centre is at (j + 0.5) * step from the square's edge.
    return np.array([[step, 0.0, centre[0] - side / 2 + 0.5 * step], [0.0, step, centre[1] - side / 2 + 0.5 * step]])


ROTATION_SQUARINGS = 24  # power steps 2^24 on Horn's shifted 4x4 matrix: converged to float64 for any real gap


def _horn_matrix(covariance: torch.Tensor) -> torch.Tensor:
    """Horn's (1987) symmetric 4x4 matrix (B, 4, 4) of a covariance H = sum p q^T (B, 3, 3): the unit quaternion
    of the rotation R maximising trace(R H) is its top eigenvector, and trace(R H) its top eigenvalue."""
    (sxx, sxy, sxz), (syx, syy, syz), (szx, szy, szz) = (covariance[:, i].unbind(-1) for i in range(3))
    rows = [
        [sxx + syy + szz, syz - szy, szx - sxz, sxy - syx],
        [syz - szy, sxx - syy - szz, sxy + syx, szx + sxz],
        [szx - sxz, sxy + syx, syy - sxx - szz, syz + szy],
        [sxy - syx, szx + sxz, syz + szy, szz - sxx - syy],
    ]
    return torch.stack([torch.stack(row, -1) for row in rows], -2)


def _top_eigenvector(matrix: torch.Tensor) -> torch.Tensor:
    """Unit eigenvector (B, 4) of the largest eigenvalue of symmetric (B, 4, 4) matrices, by repeated squaring.

    Written by hand because ONNX has no eigen- or singular-value solver (eval.export): shifted by its Frobenius
    norm the matrix is positive semi-definite with the same top eigenvector, and each trace-normalised squaring
    doubles the power, so 2^ROTATION_SQUARINGS power steps end on the projector v v^T; its largest diagonal
    entry picks a column, which is v up to sign (a quaternion's sign does not change its rotation).
    """
    norm = matrix.square().sum((1, 2)).sqrt() + torch.finfo(matrix.dtype).tiny
    power = matrix + norm[:, None, None] * torch.eye(4, dtype=matrix.dtype, device=matrix.device)
    for _ in range(ROTATION_SQUARINGS):
        power = power / power.diagonal(dim1=1, dim2=2).sum(-1)[:, None, None]
        power = power @ power
    column = power.diagonal(dim1=1, dim2=2).argmax(-1)  # (B,)
    vector = power.gather(2, column[:, None, None].expand(-1, 4, 1))[..., 0]
    return vector / vector.norm(dim=-1, keepdim=True)


def _quaternion_to_rotation(q: torch.Tensor) -> torch.Tensor:
    """Unit quaternions (B, 4) as (w, x, y, z) -> rotation matrices (B, 3, 3)."""
    w, x, y, z = q.unbind(-1)
    rows = [
        [w * w + x * x - y * y - z * z, 2 * (x * y - w * z), 2 * (x * z + w * y)],
        [2 * (y * x + w * z), w * w - x * x + y * y - z * z, 2 * (y * z - w * x)],
        [2 * (z * x - w * y), 2 * (z * y + w * x), w * w - x * x - y * y + z * z],
    ]
    return torch.stack([torch.stack(row, -1) for row in rows], -2)


def procrustes(points: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """Similarity-align each point set (B, N, 3) to a centred reference (N, 3): best scale, rotation and shift.

    The least-squares solution with a proper rotation (Umeyama's, whose SVD with the reflection fix it equals:
    tests/test_face_geometry.py), found as Horn's quaternion, the top eigenvector of a 4x4 symmetric matrix, in
    float64 by repeated squaring: no SVD, so the graph exports to ONNX (eval.export); differentiable (for a
    face-like point cloud the top eigenvalue is well separated). Returns the input's dtype.
    """
    centred = points - points.mean(1, keepdim=True)
    covariance = (centred.transpose(1, 2) @ reference).double()  # (B, 3, 3) H = sum p q^T
    rotation = _quaternion_to_rotation(_top_eigenvector(_horn_matrix(covariance)))  # maps points onto the reference
    scale = (rotation * covariance.transpose(1, 2)).sum((1, 2)) / centred.double().square().sum((1, 2))  # tr(R H)/|p|^2
    return (scale[:, None, None] * centred.double() @ rotation.transpose(1, 2)).to(points.dtype)


# ------------------------------------------------------------------------------------------------------------
# Landmark geometry: MediaPipe's 468 points, pose removed

# The landmark net's 192 px crop (docs/contracts.md section 2), measured on game renders (12 random faces and
# the neutral one, 64-256 px): MediaPipe's own landmarks-to-ROI tracking settles on squares of side 0.89-1.03 S
# (mean 0.96) centred on (0.50, 0.557). Against the projected mesh vertices, the landmarks' mean error (in 256 px
# units) falls from 3.5-4.2 px for a 0.80 S square to 3.2-3.7 px at 0.95 S, and the face logit rises (min 14 -> 20);
# at 0.95 S the points span about 0.2-0.8 of the crop, as in MediaPipe's own ROIs.
LANDMARK_CROP_SIDE = 0.95
LANDMARK_CROP_CENTRE = (0.5, 0.56)
# MediaPipe's axes are x right, y down, z away from the camera; the game's world is x right, y up, z towards it.
WORLD_TO_NET_AXES = np.array([1.0, -1.0, -1.0])
# Output unit: 1/40 of the neutral inter-ocular distance. Two random game faces (U[-2.5, 2.5] parameters) then
# differ by a feature MSE of ~0.8 (measured at 128 px), the order of Deep3D's unit-variance coefficients between
# two people, so L_3d weighs in eq. 11 about as it does in the paper.
LANDMARK_SCALE = 40.0


def neutral_reference() -> np.ndarray:
    """(468, 3) centred reference shape: the game's neutral face landmarks in the landmark net's axes."""
    from game.face import neutral_face_landmarks  # game data (game/data/neutral_face.npy)

    points = neutral_face_landmarks() * WORLD_TO_NET_AXES
    return points - points.mean(0)


class LandmarkGeometry(AlwaysEval):
    """F_3d = MediaPipe's 468 3D landmarks after similarity alignment to the neutral face, flattened (B, 1404).

    The reference is fixed (not the batch mean), so a face's feature does not depend on its batch: a photo
    and its render are compared in one frame, even though the consistency loss extracts them in two calls.
    Pose drops out: a rigid rotation of the landmarks gives the same feature exactly; on game renders at
    +-10 deg yaw (128 px) the feature moves ~4x less than between two random faces, at +-20 deg ~1.3x less
    (the net's own depth is not pose-invariant), against ~2x MORE without the alignment.
    """

    embedding_dim = 468 * 3

    def __init__(self, tflite_path: str | os.PathLike | None = None, scale: float = LANDMARK_SCALE) -> None:
        super().__init__()
        self.net = FaceMeshNet(tflite_path)
        self.crop = TemplateCrop(
            square_crop_to_template(LANDMARK_CROP_SIDE, LANDMARK_CROP_CENTRE, 192), 192, type(self).__name__
        )
        self.register_buffer("reference", torch.from_numpy(neutral_reference()).float(), persistent=False)
        self.scale = scale
        freeze(self)

    def landmarks(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Raw landmarks (B, 468, 3) in crop pixels and face logits (B,) of template-aligned images."""
        return self.net(self.crop(images))

    def pose_free(self, points: torch.Tensor) -> torch.Tensor:
        """Raw landmarks (B, 468, 3) -> (B, 1404): similarity-aligned to the neutral face, x scale, flattened."""
        # fp32 whatever the autocast: an SVD in bf16 is not accurate enough to cancel a rotation.
        with torch.autocast(points.device.type, enabled=False):
            aligned = procrustes(points.float(), self.reference)
        return (self.scale * aligned).flatten(1)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, S, S) template-aligned RGB in [0, 1] -> (B, 1404) pose-free landmark coordinates."""
        return self.pose_free(self.landmarks(images)[0])


# ------------------------------------------------------------------------------------------------------------
# Deep3DFaceRecon_pytorch (Deng et al. 2019): ResNet-50 -> 257 coefficients

DEEP3D_SIZE = 224
DEEP3D_OUTPUTS = (80, 64, 80, 3, 27, 2, 1)  # id, expression, texture, angles, lighting (SH), tx ty, tz
DEEP3D_FEATURE = slice(0, 144)  # identity + expression; pose, texture, light and translation are discarded
# Deep3D's standard 3D face (util/load_mats.py: load_lm3d, BFM units, y up): right eye, left eye, nose tip,
# right and left mouth corner. align_img puts their orthographic projection, 102 px per unit, about the centre
# of the 224 px crop: continuous x = 112 + 102 X, y = 112 - 102 Y, i.e. pixel index 111.5 + ...
DEEP3D_LM3D = np.array(
    [
        [-0.31148657, 0.29036078, 0.13377953],
        [0.30979887, 0.28972036, 0.13179526],
        [0.0032535, -0.04617932, 0.55244243],
        [-0.25216928, -0.38133916, 0.22405732],
        [0.2484662, -0.38128236, 0.22235769],
    ]
)
DEEP3D_CROP_POINTS = 111.5 + 102.0 * DEEP3D_LM3D[:, :2] * np.array([1.0, -1.0])
# Crop pixel -> template fraction: the least-squares similarity between the two five-point sets, the way a
# photo is aligned to the template (contracts section 2), so a template-aligned face lands where align_img
# would put it.
DEEP3D_CROP_TO_TEMPLATE = similarity_to_template(DEEP3D_CROP_POINTS, 1)
DEEP3D_LAYOUT = (
    "a dict with 'net_recon': the state dict of Deep3DFaceRecon_pytorch's ReconNetWrapper "
    "(backbone.conv1.weight (64, 3, 7, 7) ... backbone.layer4.2.bn3.running_var (2048,), and "
    "final_layers.0-6.weight/bias with 80, 64, 80, 3, 27, 2, 1 outputs of 2048 inputs), or the "
    "same ResNet-50 in torchvision's layout with fc.weight (257, 2048), as in checkpoints/<name>/"
    "epoch_20.pth"
)


def _expected_layout(state: dict[str, torch.Tensor]) -> dict[str, tuple[int, ...]]:
    """Key -> shape that a Deep3D state dict must have: ReconNetWrapper's if it has final_layers, else torchvision's."""
    with torch.device("meta"):  # shapes only: no memory, no random initialisation
        net = resnet50(weights=None, num_classes=sum(DEEP3D_OUTPUTS))
    torchvision = {key: tuple(value.shape) for key, value in net.state_dict().items()}
    if not any(key.startswith("final_layers.") for key in state):
        return torchvision
    expected = {f"backbone.{key}": shape for key, shape in torchvision.items() if not key.startswith("fc.")}
    for i, outputs in enumerate(DEEP3D_OUTPUTS):
        expected |= {f"final_layers.{i}.weight": (outputs, 2048, 1, 1), f"final_layers.{i}.bias": (outputs,)}
    return expected


def _torchvision_layout(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Deep3D's ReconNetWrapper keys -> torchvision resnet50(num_classes=257) keys (1x1 conv heads -> one fc)."""
    heads = [f"final_layers.{i}" for i in range(len(DEEP3D_OUTPUTS))]
    state = {key.removeprefix("backbone."): value for key, value in state.items()}
    if heads[0] + ".weight" in state:
        # A 1x1 conv on the pooled 1x1 map is a linear layer; the seven heads in order are the 257 outputs.
        state["fc.weight"] = torch.cat([state.pop(f"{head}.weight").flatten(1) for head in heads])
        state["fc.bias"] = torch.cat([state.pop(f"{head}.bias") for head in heads])
    return state


class Deep3DCoefficients(AlwaysEval):
    """F_3d = Deep3DFaceRecon_pytorch's identity and expression coefficients (B, 144) of template-aligned faces.

    Deep3DCoefficients() has random weights (tests); Deep3DCoefficients.from_checkpoint(path) loads a
    Deep3DFaceRecon_pytorch checkpoint (e.g. checkpoints/face_recon/epoch_20.pth).
    """

    embedding_dim = DEEP3D_FEATURE.stop - DEEP3D_FEATURE.start

    def __init__(self, net: nn.Module | None = None) -> None:
        super().__init__()
        self.net = net if net is not None else resnet50(weights=None, num_classes=sum(DEEP3D_OUTPUTS))
        self.crop = TemplateCrop(DEEP3D_CROP_TO_TEMPLATE, DEEP3D_SIZE, type(self).__name__)
        freeze(self)

    def coefficients(self, images: torch.Tensor) -> torch.Tensor:
        """All 257 coefficients (id, exp, tex, angles, SH light, translation) of template-aligned images."""
        return self.net(self.crop(images))  # Deep3D feeds RGB in [0, 1], unnormalised (its test.py)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, S, S) template-aligned RGB in [0, 1] -> (B, 144) identity + expression coefficients."""
        return self.coefficients(images)[:, DEEP3D_FEATURE]

    @classmethod
    def from_checkpoint(cls, path: str | os.PathLike) -> Deep3DCoefficients:
        """Load a Deep3DFaceRecon_pytorch checkpoint: a dict whose 'net_recon' is the ReconNetWrapper state dict."""
        state = read_state_dict(
            path,
            "net_recon",
            DEEP3D_LAYOUT,
            hint=". To re-save one: torch.save({'net_recon': torch.load(path, weights_only=False)['net_recon']}, path)",
        )
        expected = _expected_layout(state)
        got = {key: tuple(value.shape) for key, value in state.items()}
        if got != expected:
            raise ValueError(
                f"{path} does not hold Deep3D weights: expected {DEEP3D_LAYOUT}. {layout_mismatch(got, expected)}"
            )
        with torch.device("meta"):  # the checkpoint supplies every tensor: skip the random initialisation
            net = resnet50(weights=None, num_classes=sum(DEEP3D_OUTPUTS))
        state = {k: v.float() if v.is_floating_point() else v for k, v in _torchvision_layout(state).items()}
        net.load_state_dict(state, assign=True)
        return cls(net)


def build_face_geometry(name: str = "landmarks", checkpoint: str | os.PathLike | None = None) -> nn.Module:
    """The 3D face-geometry extractor F_3d by name: 'landmarks' (MediaPipe's landmark net from the cache, or the
    .tflite file `checkpoint`) or 'deep3d' (`checkpoint` = a Deep3DFaceRecon_pytorch epoch_*.pth)."""
    alternatives = (
        "alternatives: 'landmarks' (face_landmark.tflite made by `python -m models fetch`, or "
        "checkpoint=path to it) or 'deep3d' (checkpoint=path to a Deep3DFaceRecon_pytorch checkpoint, "
        "e.g. checkpoints/face_recon/epoch_20.pth)"
    )
    if name not in EXTRACTORS:
        raise ValueError(f"unknown face-geometry extractor {name!r}; {alternatives}")
    try:
        if name == "landmarks":
            return LandmarkGeometry(checkpoint)
        if checkpoint is None:
            raise FileNotFoundError("Deep3D needs checkpoint=path to a Deep3DFaceRecon_pytorch checkpoint")
        return Deep3DCoefficients.from_checkpoint(checkpoint)
    except (OSError, ValueError) as error:
        raise type(error)(f"face-geometry extractor {name!r} could not be loaded: {error}; {alternatives}") from error
