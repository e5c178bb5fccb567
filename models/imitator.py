"""The imitator G (paper Table 2): a differentiable stand-in for the game engine, p -> screenshot.

At 256 px it is Table 2 exactly:
    p (267) -> 4x4x256 -> 8x8x256 -> 16x16x256 -> 32x32x128 -> 64x64x64 -> 128x128x32 -> 256x256x3
Every block is a 4x4 transposed convolution + BatchNorm + ReLU; the last one has a sigmoid, so
images come out in [0, 1] (docs/contracts.md section 1). Smaller outputs (128, 64 px) drop the
top blocks: the remaining blocks keep Table 2's widths counted from the input side.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from game.parameters import NUM_PARAMETERS

TABLE2_CHANNELS = (256, 256, 256, 128, 64, 32)  # L1..L6 widths at 4, 8, 16, 32, 64, 128 px


def up_block(in_channels: int, out_channels: int) -> nn.Sequential:
    """Double the resolution: transposed conv 4x4 stride 2 + BatchNorm + ReLU."""
    return nn.Sequential(
        nn.ConvTranspose2d(in_channels, out_channels, 4, stride=2, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


class Imitator(nn.Module):
    """Game parameters (B, 267) in [-2.5, 2.5] -> rendered face (B, 3, S, S) in [0, 1]."""

    def __init__(
        self,
        num_parameters: int = NUM_PARAMETERS,
        image_size: int = 256,
        channels: Sequence[int] = TABLE2_CHANNELS,
    ) -> None:
        super().__init__()
        # Blocks from 4 px up to S/2, then the RGB head doubles to S: 4 * 2**(k-1) * 2 == S.
        num_blocks = {64: 4, 128: 5, 256: 6}.get(image_size)
        if num_blocks is None:
            raise ValueError(f"image_size must be 64, 128 or 256, got {image_size}")
        if len(channels) < num_blocks:
            raise ValueError(f"{image_size} px needs {num_blocks} channel widths, got {list(channels)}")
        # Kept as attributes of the same names: a checkpoint rebuilds the net from them.
        self.num_parameters = num_parameters
        self.image_size = image_size
        self.channels = tuple(int(c) for c in channels)
        widths = self.channels[:num_blocks]

        # L1: 1x1 -> 4x4. On a 1x1 input the stride has no effect, so a 4x4 kernel without
        # padding is exactly the "4x4 transposed conv" of every later block.
        layers = [
            nn.ConvTranspose2d(num_parameters, widths[0], 4, stride=1, padding=0, bias=False),
            nn.BatchNorm2d(widths[0]),
            nn.ReLU(inplace=True),
        ]
        layers += [up_block(c_in, c_out) for c_in, c_out in zip(widths[:-1], widths[1:])]
        layers += [nn.ConvTranspose2d(widths[-1], 3, 4, stride=2, padding=1), nn.Sigmoid()]
        self.layers = nn.Sequential(*layers)

    def forward(self, parameters: torch.Tensor) -> torch.Tensor:
        """Render (B, num_parameters) parameters to (B, 3, S, S) images in [0, 1]."""
        return self.layers(parameters[:, :, None, None])
