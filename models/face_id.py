"""Frozen face-identity extractors F_id: dlib's ResNet-34 descriptor (default, offline) and LightCNN-29 v2.

Every extractor takes faces aligned to the template of docs/contracts.md section 2, (B, 3, S, S) float RGB in
[0, 1] at any S, cuts its own input crop from the template with a fixed similarity transform (no second
detection), normalises as its network expects, and returns (B, embedding_dim) features. Gradients flow to the
image; the weights are non-persistent buffers, so they never require grad and never enter a checkpoint, and
the module stays in eval mode whatever a parent asks.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from game.framing import similarity_to_template
from models.modes import AlwaysEval
from models.weights import face_api_asset, layout_mismatch, read_state_dict

EXTRACTORS = ("dlib", "lightcnn29v2")


class FrozenExtractor(AlwaysEval):
    """Base of the F_id extractors: parameters become buffers, eval mode is permanent."""

    embedding_dim: int

    def freeze(self) -> FrozenExtractor:
        """Turn every parameter into a non-persistent buffer (weights come from files) and switch to eval."""
        for module in self.modules():
            for name, param in list(module.named_parameters(recurse=False)):
                delattr(module, name)
                module.register_buffer(name, param.detach(), persistent=False)
        return self.eval()


class TemplateCrop(nn.Module):
    """A network's input crop cut from template-aligned images by a fixed similarity: (B, 3, S, S) -> (B, 3, n, n)."""

    def __init__(self, crop_to_template: np.ndarray, size: int, owner: str):
        """crop_to_template: 2x3 affine from crop pixel indices (pixel j centred on j) to template fractions."""
        super().__init__()
        self.size, self.owner = size, owner
        self.template_per_pixel = float(np.linalg.norm(crop_to_template[:, 0]))
        ys, xs = np.mgrid[:size, :size].astype(np.float64)
        fractions = np.stack([xs, ys, np.ones_like(xs)], -1) @ crop_to_template.T  # (n, n, 2)
        # Template fraction f is continuous position f * S, which grid_sample(align_corners=False) reads as 2f - 1.
        self.register_buffer("grid", torch.from_numpy(2 * fractions - 1).float()[None], persistent=False)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, S, S) template-aligned images at any S -> (B, 3, n, n), differentiable, same value range."""
        if images.ndim != 4 or images.shape[1] != 3 or images.shape[-1] != images.shape[-2]:
            raise ValueError(
                f"{self.owner} expects template-aligned images of shape (B, 3, S, S), float RGB in "
                f"[0, 1]; got {tuple(images.shape)}"
            )
        side = images.shape[-1]
        # Input pixels per crop pixel: beyond 1.5 bilinear sampling aliases, so shrink with a proper filter first
        # (dlib cuts big chips from an image pyramid for the same reason). Template fractions survive the resize.
        step = side * self.template_per_pixel
        if step > 1.5:
            images = F.interpolate(
                images, size=round(side / step), mode="bilinear", antialias=True, align_corners=False
            )
        grid = self.grid.to(images.dtype).expand(images.shape[0], -1, -1, -1)
        return F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


# ------------------------------------------------------------------------------------------------------------
# dlib's face descriptor (dlib_face_recognition_resnet_model_v1), as 8-bit TFJS weights from @vladmandic/face-api

# Our five template points on dlib's mean face (get_face_chip_details, dlib/image_transforms/interpolation.h),
# in its units: eye centres = means of iBUG-68 points 36-41 and 42-47, nose tip = point 30, mouth corners = 48, 54.
DLIB_MEAN_FACE_POINTS = np.array(
    [
        [0.2254918, 0.2159903],
        [0.7547613, 0.2159903],
        [0.490127, 0.515625],
        [0.254149, 0.780233],
        [0.726104, 0.780233],
    ]
)
DLIB_CHIP_SIZE = 150
DLIB_CHIP_PADDING = 0.25  # dlib's compute_face_descriptor default: the chip the network was trained on
# Chip pixel (index coordinates, dlib's convention) of each point: (padding + mean) / (1 + 2 padding) * size.
DLIB_CHIP_POINTS = (DLIB_CHIP_PADDING + DLIB_MEAN_FACE_POINTS) / (1 + 2 * DLIB_CHIP_PADDING) * DLIB_CHIP_SIZE
# Chip pixel -> template fraction: the same least-squares similarity that aligns a photo to the template
# (contracts section 2), applied to dlib's mean face. A face shaped like dlib's mean face, aligned to the
# template by its five points, therefore lands exactly where dlib's own 68-point alignment puts it. Our
# template's mouth is narrower than dlib's (0.68 vs 0.89 of the eye distance), so the five points of the
# template itself land up to 2.1 px (eyes) and 4.6 px (mouth corners, horizontally) off dlib's on the chip.
# Checked on 23 real faces (face-api's demo photos and skimage's astronaut): against dlib's own alignment of
# their 68 points, this route puts those points 4.5 px RMS away on the 150 px chip; the best fixed similarity
# fitted to these faces would give 3.95 px, the eyes-only fit 5.5 px.
DLIB_CHIP_TO_TEMPLATE = similarity_to_template(DLIB_CHIP_POINTS, 1)
DLIB_MEAN_RGB = (122.782, 117.001, 104.298)  # face-api subtracts this from 0-255 RGB, then divides by 255


def read_tfjs_weights(manifest_path: str | os.PathLike, bin_path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """TFJS layers weights (manifest + one .bin), uint8/uint16 affine-quantised or float32, as float32 tensors."""
    manifest = json.loads(Path(manifest_path).read_text())
    buffer, offset, weights = Path(bin_path).read_bytes(), 0, {}
    for spec in (w for group in manifest for w in group["weights"]):
        count = int(np.prod(spec["shape"]))
        quantization = spec.get("quantization")
        dtype = np.dtype(quantization["dtype"] if quantization else spec["dtype"])
        if dtype.name not in ("uint8", "uint16", "float32"):
            raise ValueError(f"{manifest_path}: weight {spec['name']} has unsupported dtype {dtype.name}")
        raw = np.frombuffer(buffer, dtype, count, offset)
        offset += count * dtype.itemsize
        # tfjs dequantises in float64 before storing float32: v = q * scale + min.
        values = raw * quantization["scale"] + quantization["min"] if quantization and dtype.kind == "u" else raw
        weights[spec["name"]] = torch.from_numpy(values.astype(np.float32).reshape(spec["shape"]))
    if offset != len(buffer):
        raise ValueError(f"{bin_path}: {len(buffer)} bytes, but {manifest_path} describes {offset}")
    return weights


class _ConvScale(nn.Module):
    """conv + bias, then face-api's per-channel scale layer (dlib's affine, i.e. folded batch norm), then ReLU."""

    def __init__(self, weights: dict[str, torch.Tensor], name: str, stride: int, relu: bool):
        super().__init__()
        kernel = weights[f"{name}/conv/filters"].permute(3, 2, 0, 1)  # TF HWIO -> torch OIHW
        scale = weights[f"{name}/scale/weights"]
        # (conv(x) + b) * s + c == conv_{w s}(x) + (b s + c): one op fewer per layer, same result to ~1e-7.
        self.register_buffer("weight", (kernel * scale[:, None, None, None]).contiguous(), persistent=False)
        self.register_buffer(
            "bias", weights[f"{name}/conv/bias"] * scale + weights[f"{name}/scale/biases"], persistent=False
        )
        # face-api: stride 2 convs use TF 'valid' padding, stride 1 convs 'same' (odd kernels: symmetric).
        self.stride, self.padding, self.relu = stride, 0 if stride == 2 else kernel.shape[-1] // 2, relu

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.conv2d(x, self.weight, self.bias, self.stride, self.padding)
        return F.relu(x) if self.relu else x


class _Residual(nn.Module):
    """Two 3x3 conv-scale layers plus shortcut; a down block halves the size and may double the channels."""

    def __init__(self, weights: dict[str, torch.Tensor], name: str, down: bool):
        super().__init__()
        self.down = down
        self.conv1 = _ConvScale(weights, f"{name}/conv1", 2 if down else 1, relu=True)
        self.conv2 = _ConvScale(weights, f"{name}/conv2", 1, relu=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv2(self.conv1(x))
        if self.down:
            x = F.avg_pool2d(x, 2)
            # On odd sizes the 'valid' conv is one row/column short of the pooled shortcut: face-api appends
            # zeros at the bottom and right. New channels of the shortcut are zeros too.
            out = F.pad(out, (0, x.shape[-1] - out.shape[-1], 0, x.shape[-2] - out.shape[-2]))
            x = F.pad(x, (0, 0, 0, 0, 0, out.shape[1] - x.shape[1]))
        return F.relu(out + x)


class DlibResNet(nn.Module):
    """dlib's ResNet-34-style face descriptor network: (B, 3, 150, 150) RGB 0-255 chips -> (B, 128)."""

    # (name, downsamples): 150 -> stem 72 -> max-pool 35 -> 17 -> 8 -> 4 -> 2, channels 32 -> 64 -> 128 -> 256.
    BLOCKS = (
        ("conv32_1", False),
        ("conv32_2", False),
        ("conv32_3", False),
        ("conv64_down", True),
        ("conv64_1", False),
        ("conv64_2", False),
        ("conv64_3", False),
        ("conv128_down", True),
        ("conv128_1", False),
        ("conv128_2", False),
        ("conv256_down", True),
        ("conv256_1", False),
        ("conv256_2", False),
        ("conv256_down_out", True),
    )

    def __init__(self, weights: dict[str, torch.Tensor]):
        super().__init__()
        self.stem = _ConvScale(weights, "conv32_down", 2, relu=True)  # 7x7 stride 2
        self.blocks = nn.Sequential(*(_Residual(weights, name, down) for name, down in self.BLOCKS))
        self.register_buffer("fc", weights["fc"], persistent=False)  # (256, 128)
        self.register_buffer("mean", torch.tensor(DLIB_MEAN_RGB).view(1, 3, 1, 1), persistent=False)

    def forward(self, chips: torch.Tensor) -> torch.Tensor:
        """(B, 3, 150, 150) RGB in 0-255 -> (B, 128) descriptors (Euclidean; dlib's same-person threshold 0.6)."""
        size = DLIB_CHIP_SIZE
        if chips.ndim != 4 or tuple(chips.shape[1:]) != (3, size, size):
            raise ValueError(
                f"DlibResNet expects chips of shape (B, 3, {size}, {size}), RGB 0-255; got {tuple(chips.shape)}"
            )
        x = self.stem((chips - self.mean) / 255)
        x = self.blocks(F.max_pool2d(x, 3, 2))
        return x.mean((2, 3)) @ self.fc


class DlibFaceDescriptor(FrozenExtractor):
    """F_id = dlib's 128-d face descriptor of template-aligned faces, via dlib's own 150 px chip."""

    embedding_dim = 128

    def __init__(self, model_dir: str | os.PathLike | None = None):
        super().__init__()
        name = "face_recognition_model"
        manifest, weights = (
            (Path(model_dir) / f"{name}-weights_manifest.json", Path(model_dir) / f"{name}.bin")
            if model_dir
            else (face_api_asset(f"{name}-weights_manifest.json"), face_api_asset(f"{name}.bin"))
        )
        for path in (manifest, weights):
            if not path.is_file():
                raise FileNotFoundError(f"{path} is missing (dlib's face descriptor weights from @vladmandic/face-api)")
        self.net = DlibResNet(read_tfjs_weights(manifest, weights))
        self.chip = TemplateCrop(DLIB_CHIP_TO_TEMPLATE, DLIB_CHIP_SIZE, type(self).__name__)  # [0, 1] chips
        self.freeze()

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, S, S) template-aligned RGB in [0, 1] -> (B, 128) descriptors."""
        return self.net(self.chip(images) * 255)


# ------------------------------------------------------------------------------------------------------------
# LightCNN-29 v2 (Wu et al., "A Light CNN for Deep Face Representation with Noisy Labels"), the paper's F_id

LIGHTCNN_FILE = "LightCNN_29Layers_V2_checkpoint.pth.tar"
LIGHTCNN_SIZE = 128
# The official test crops are 128 px, eyes level, eye midpoint at y = 40 and 48 px above the mouth midpoint;
# the template has its eye midpoint at (0.5, 0.44) and its mouth midpoint 0.26 below.
_LIGHTCNN_PX = 0.26 / 48  # template fraction per crop pixel
LIGHTCNN_CROP_TO_TEMPLATE = np.array(
    [[_LIGHTCNN_PX, 0.0, 0.5 - 64 * _LIGHTCNN_PX], [0.0, _LIGHTCNN_PX, 0.44 - 40 * _LIGHTCNN_PX]]
)
GRAY = (0.299, 0.587, 0.114)  # OpenCV's RGB -> gray, as the official cv2.IMREAD_GRAYSCALE loading does


class _MFM(nn.Module):
    """Max-Feature-Map: a conv with twice the outputs, then the element-wise max of the two halves."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, padding: int = 1):
        super().__init__()
        self.filter = nn.Conv2d(in_channels, 2 * out_channels, kernel_size, 1, padding)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, b = self.filter(x).chunk(2, dim=1)
        return torch.max(a, b)


class _Group(nn.Module):
    """1x1 MFM then 3x3 MFM (the official `group`)."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.conv_a = _MFM(in_channels, in_channels, 1, 0)
        self.conv = _MFM(in_channels, out_channels, 3, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(self.conv_a(x))


class _ResBlock(nn.Module):
    """Two 3x3 MFM layers with an identity shortcut (the official `resblock`)."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv1 = _MFM(channels, channels)
        self.conv2 = _MFM(channels, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(self.conv1(x))


def _pool(x: torch.Tensor) -> torch.Tensor:
    """v2's down-sampling: 2x2 max-pool plus 2x2 average-pool."""
    return F.max_pool2d(x, 2) + F.avg_pool2d(x, 2)


class LightCNN29v2(FrozenExtractor):
    """F_id = LightCNN-29 v2's 256-d `fc` embedding of template-aligned faces (official key layout).

    LightCNN29v2() has random weights (tests); LightCNN29v2.from_checkpoint(path) loads the official file.
    """

    embedding_dim = 256

    def __init__(self, num_classes: int = 80013):
        super().__init__()
        self.num_classes = num_classes
        # Official layout and names ([1, 2, 3, 4] residual blocks); sizes for a 128 px input after each _pool.
        self.conv1 = _MFM(1, 48, 5, 2)  # (B, 48, 64, 64)
        self.block1 = nn.Sequential(*(_ResBlock(48) for _ in range(1)))
        self.group1 = _Group(48, 96)  # (B, 96, 32, 32)
        self.block2 = nn.Sequential(*(_ResBlock(96) for _ in range(2)))
        self.group2 = _Group(96, 192)  # (B, 192, 16, 16)
        self.block3 = nn.Sequential(*(_ResBlock(192) for _ in range(3)))
        self.group3 = _Group(192, 128)
        self.block4 = nn.Sequential(*(_ResBlock(128) for _ in range(4)))
        self.group4 = _Group(128, 128)  # (B, 128, 8, 8)
        self.fc = nn.Linear(8 * 8 * 128, 256)
        self.fc2 = nn.Linear(256, num_classes, bias=False)  # identity classifier of training; unused by F_id
        self.template_crop = TemplateCrop(LIGHTCNN_CROP_TO_TEMPLATE, LIGHTCNN_SIZE, type(self).__name__)
        self.register_buffer("gray", torch.tensor(GRAY).view(1, 3, 1, 1), persistent=False)
        self.freeze()

    def crop(self, images: torch.Tensor) -> torch.Tensor:
        """LightCNN's 128 x 128 grayscale crop in [0, 1] of template-aligned (B, 3, S, S) RGB images."""
        return (self.template_crop(images) * self.gray).sum(1, keepdim=True)

    def embed(self, gray: torch.Tensor) -> torch.Tensor:
        """(B, 1, 128, 128) grayscale in [0, 1] -> (B, 256) `fc` embedding, as the official network computes it."""
        if gray.ndim != 4 or tuple(gray.shape[1:]) != (1, LIGHTCNN_SIZE, LIGHTCNN_SIZE):
            raise ValueError(
                f"LightCNN29v2.embed expects (B, 1, {LIGHTCNN_SIZE}, {LIGHTCNN_SIZE}) grayscale "
                f"in [0, 1]; got {tuple(gray.shape)}"
            )
        x = _pool(self.conv1(gray))
        x = _pool(self.group1(self.block1(x)))
        x = _pool(self.group2(self.block2(x)))
        x = self.group4(self.block4(self.group3(self.block3(x))))
        return self.fc(_pool(x).flatten(1))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, S, S) template-aligned RGB in [0, 1] -> (B, 256) embeddings."""
        return self.embed(self.crop(images))

    def expected_keys(self) -> dict[str, tuple[int, ...]]:
        """The official checkpoint's state_dict layout without its `module.` prefix: key -> shape."""
        return {name: tuple(t.shape) for name, t in self.named_buffers() if name.endswith((".weight", ".bias"))}

    @classmethod
    def from_checkpoint(cls, path: str | os.PathLike) -> LightCNN29v2:
        """Load the official LightCNN_29Layers_V2_checkpoint.pth.tar (`state_dict` with `module.` keys)."""
        needs = f"a dict with a 'state_dict' of tensors, as in the official {LIGHTCNN_FILE}"
        state = read_state_dict(path, None, needs)
        classes = state["fc2.weight"].shape[0] if "fc2.weight" in state else 80013
        net = cls(num_classes=classes)
        expected = net.expected_keys()
        got = {key: tuple(value.shape) for key, value in state.items()}
        if got != expected:
            raise ValueError(
                f"{path} does not hold LightCNN-29 v2 weights in the official layout (`state_dict` with keys "
                f"module.conv1.filter.weight {expected['conv1.filter.weight']} ... module.fc.weight "
                f"{expected['fc.weight']}, module.fc2.weight {expected['fc2.weight']}; {len(expected)} tensors). "
                f"{layout_mismatch(got, expected, prefix='module.')}"
            )
        for name, buffer in net.named_buffers():
            if name in state:
                buffer.copy_(state[name])
        return net


def build_face_id(name: str = "dlib", checkpoint: str | os.PathLike | None = None) -> FrozenExtractor:
    """The face-identity extractor F_id by name: 'dlib' (weights from the cache, or the folder `checkpoint`)
    or 'lightcnn29v2' (`checkpoint` = the official LightCNN_29Layers_V2_checkpoint.pth.tar)."""
    alternatives = (
        f"alternatives: 'dlib' (weights made by `python -m models.weights fetch`, or checkpoint=a "
        f"folder holding face_recognition_model-weights_manifest.json and .bin) or 'lightcnn29v2' "
        f"(checkpoint=path to the official {LIGHTCNN_FILE})"
    )
    if name not in EXTRACTORS:
        raise ValueError(f"unknown face-ID extractor {name!r}; {alternatives}")
    try:
        if name == "dlib":
            return DlibFaceDescriptor(checkpoint)
        if checkpoint is None:
            raise FileNotFoundError(f"LightCNN-29 v2 needs checkpoint=path to the official {LIGHTCNN_FILE}")
        return LightCNN29v2.from_checkpoint(checkpoint)
    except (OSError, ValueError) as error:
        raise type(error)(f"face-ID extractor {name!r} could not be loaded: {error}; {alternatives}") from error
