"""The frozen template-aligned extractors' common parts: eval mode for good, and the fixed crop from the template.

Every extractor takes faces aligned to the template of docs/contracts.md section 2, (B, 3, S, S) float RGB in
[0, 1] at any S, and cuts its own input crop from the template with a fixed similarity transform (no second
detection).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from models.modes import AlwaysEval


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
