"""Restored loss (eq. 3-5): a screenshot's regressed parameters, rendered by the frozen imitator, give it back."""

from __future__ import annotations

import torch
from torch import nn

from losses.frozen import Frozen
from losses.l2 import L2Mode, l2_loss


class RestoredLoss(nn.Module):
    """L_restored = L_param + beta * L_differ, with L_param = ||G(p_t) - I_t|| through the frozen imitator G."""

    def __init__(self, imitator: nn.Module, beta: float = 0.25, mode: L2Mode = "mse") -> None:
        super().__init__()
        # Frozen: G gets no gradient and keeps its BatchNorm statistics, but passes gradients to p.
        self.imitator = imitator if isinstance(imitator, Frozen) else Frozen(imitator)
        self.beta = beta
        self.mode = mode

    def forward(
        self, params: torch.Tensor, images: torch.Tensor, vq_loss: torch.Tensor
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """params (B, 267) regressed from target images (B, 3, S, S) in [0, 1]; vq_loss is their L_differ."""
        renders = self.imitator(params)
        if renders.shape != images.shape:
            raise ValueError(
                f"the imitator renders {tuple(renders.shape)} but the target images are "
                f"{tuple(images.shape)}: give both the same image_size"
            )
        param = l2_loss(renders.float(), images.float(), self.mode)
        return param + self.beta * vq_loss, {"param": param.detach(), "differ": vq_loss.detach()}
