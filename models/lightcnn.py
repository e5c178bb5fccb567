"""LightCNN-29 v2 (Wu et al., "A Light CNN for Deep Face Representation with Noisy Labels"), the paper's F_id,
in the official key layout (models.face_id builds it from the official checkpoint)."""

from __future__ import annotations

import os

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from models.extractor import FrozenExtractor, TemplateCrop
from models.weights import layout_mismatch, read_state_dict

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
