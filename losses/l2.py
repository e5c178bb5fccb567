"""The L2 distance of eq. 3 and 9, E||a - b||_2, in its two readings."""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F

L2Mode = Literal["mse", "norm"]


def l2_loss(a: torch.Tensor, b: torch.Tensor, mode: L2Mode = "mse") -> torch.Tensor:
    """Batch mean of the distance between a and b (B, ...): mean squared error or per-sample Euclidean norm."""
    if a.shape != b.shape:
        raise ValueError(f"l2_loss needs equal shapes, got {tuple(a.shape)} and {tuple(b.shape)}")
    if mode == "mse":
        # Default: "L2 loss" in the paper's prose; independent of image size, the scale that
        # beta = 0.25 on L_differ was set for in VQ-VAE-2, and what imitator training uses.
        return F.mse_loss(a, b)
    if mode == "norm":
        # The equations read literally: the Euclidean norm of each sample's difference.
        return (a - b).flatten(1).norm(dim=1).mean()
    raise ValueError(f"mode must be 'mse' or 'norm', got {mode!r}")
