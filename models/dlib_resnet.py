"""dlib's face descriptor (dlib_face_recognition_resnet_model_v1), a ResNet-34, from @vladmandic/face-api's 8-bit
TFJS weights in the weight cache: the default F_id (models.face_id)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from game.framing import similarity_to_template
from models.extractor import FrozenExtractor, TemplateCrop
from models.weights import face_api_asset

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
