"""The regressor R (paper Table 1): quantised feature map -> 1024-d feature f -> 267 game parameters p.

At 256 px (feature map 64x64x128) it is Table 1 exactly:
    64x64x128 -> L1 32x32x32 -> L2 16x16x64 -> L3 8x8x128 -> L4 4x4x256 -> L5 2x2x256 (= f, 1024-d) -> p (267)
Smaller images keep every layer and width and drop strides from the front, so f stays 1024-d:
    128 px: 32x32x128 -> L1 32x32x32 (stride 1) -> L2 16x16x64 -> ... -> L5 2x2x256
     64 px: 16x16x128 -> L1 16x16x32, L2 16x16x64 (stride 1) -> L3 8x8x128 -> ... -> L5 2x2x256
Table 1 gives only the shapes. Our choices: a stride-2 layer is a 4x4 conv (as in the VQ-VAE-2
encoder), a stride-1 layer a 3x3 conv; each is followed by GroupNorm and LeakyReLU(0.2); the
head is a linear layer on the flattened L5 (a 2x2 valid conv, equivalently), then 2.5 * tanh so p
stays in the range the imitator was trained on (docs/method.md#regressor).
Not in the paper: a per-parameter `shrinkage` factor in [0, 1] (ones, i.e. off, until
callbacks.shrinkage.ShrinkageCalibration fits it on held-out screenshots) scales p in eval mode only, like
BatchNorm's running statistics: training sees the raw output, every user of a trained R the calibrated one.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal, NamedTuple

import torch
from torch import nn

from game.parameters import NUM_PARAMETERS

TABLE1_CHANNELS = (32, 64, 128, 256, 256)  # L1..L5


class RegressorOutput(NamedTuple):
    """What R returns: the image feature f and the game parameters p."""

    features: torch.Tensor  # (B, 1024) f
    parameters: torch.Tensor  # (B, 267) p in [-2.5, 2.5]


def norm_layer(kind: str, channels: int) -> nn.Module:
    """The normalisation after each conv."""
    if kind == "group":
        return nn.GroupNorm(8, channels)
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "none":
        return nn.Identity()
    raise ValueError(f"norm must be 'group', 'batch' or 'none', got {kind!r}")


class Regressor(nn.Module):
    """Feature map (B, 128, S/4, S/4) -> RegressorOutput(features f (B, 1024), parameters p (B, 267) in [-2.5, 2.5])."""

    def __init__(
        self,
        image_size: int = 256,
        in_channels: int = 128,
        num_parameters: int = NUM_PARAMETERS,
        channels: Sequence[int] = TABLE1_CHANNELS,
        # GroupNorm by default: it does not depend on the batch, so photos and screenshots run through
        # R in separate passes are normalised alike in training and evaluation, and per-domain batch
        # statistics cannot hide the domain gap that L_domain measures. "batch" is available.
        norm: Literal["group", "batch", "none"] = "group",
        parameter_range: float = 2.5,
    ) -> None:
        super().__init__()
        # Kept as attributes of the same names: a checkpoint rebuilds the net from them (docs/contracts.md 6).
        self.image_size, self.in_channels = image_size, in_channels
        self.num_parameters, self.norm = num_parameters, norm
        self.in_size = image_size // 4  # the VQ-VAE-2 bottom map's side
        self.channels = tuple(int(c) for c in channels)
        self.parameter_range = parameter_range
        # Halvings from the input side down to L5's 2x2: 5 at 64x64 (256 px), 4 at 32x32, 3 at 16x16.
        num_down = math.log2(self.in_size / 2) if self.in_size >= 2 else -1
        if image_size % 4 or not num_down.is_integer() or not 1 <= num_down <= len(self.channels):
            raise ValueError(
                f"image_size must be 4 * 2**k with 1 <= k <= {len(self.channels)} (e.g. 64, 128, 256), got {image_size}"
            )
        strides = [1] * (len(self.channels) - int(num_down)) + [2] * int(num_down)
        layers, c_in = [], in_channels
        for c_out, stride in zip(self.channels, strides):
            conv = nn.Conv2d(c_in, c_out, 4, 2, 1) if stride == 2 else nn.Conv2d(c_in, c_out, 3, 1, 1)
            layers.append(nn.Sequential(conv, norm_layer(norm, c_out), nn.LeakyReLU(0.2)))
            c_in = c_out
        self.layers = nn.Sequential(*layers)
        self.feature_dim = c_in * 2 * 2  # 1024 with Table 1's widths
        self.head = nn.Linear(self.feature_dim, num_parameters)
        # Start at the neutral face (p ~ 0, the mean of the game's prior) rather than at a random face ~0.9 from
        # it: training then moves only the parameters the losses say something about. Small, not zero, so every
        # layer below still gets a gradient on the first step.
        with torch.no_grad():
            self.head.weight.mul_(0.01)
            self.head.bias.zero_()
        self.register_buffer("shrinkage", torch.ones(num_parameters))
        self.register_load_state_dict_pre_hook(_ones_for_missing_shrinkage)

    def forward(self, x: torch.Tensor, shrink: bool | None = None) -> RegressorOutput:
        """Return the image feature f (B, 1024) and the game parameters p (B, 267); p is scaled by `shrinkage`
        in eval mode, or as `shrink` says."""
        if x.shape[-2:] != (self.in_size, self.in_size):
            raise ValueError(
                f"Regressor for {self.image_size} px expects (B, C, {self.in_size}, {self.in_size}) "
                f"feature maps, got {tuple(x.shape)}"
            )
        f = self.layers(x).flatten(1)  # L5 (B, 256, 2, 2) -> (B, 1024)
        p = self.parameter_range * torch.tanh(self.head(f))
        if (not self.training) if shrink is None else shrink:
            p = p * self.shrinkage
        return RegressorOutput(f, p)


def _ones_for_missing_shrinkage(module: Regressor, state_dict: dict, prefix: str, *args) -> None:
    """Checkpoints from before the shrinkage buffer load as uncalibrated (factor 1)."""
    state_dict.setdefault(prefix + "shrinkage", torch.ones_like(module.shrinkage))
