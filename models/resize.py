"""How every reader sees a picture of another size: antialiased bilinear to size x size."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def resize_to(images: torch.Tensor, size: int | None) -> torch.Tensor:
    """Images (B, 3, S, S) resized to size x size the way every reader sees them (antialiased bilinear); None or
    the same size: unchanged."""
    if size is None or images.shape[-1] == size:
        return images
    return F.interpolate(images, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
