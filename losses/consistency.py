"""Consistency loss (eq. 9-11): a photo and the render of its parameters share 3D shape and identity."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from losses.frozen import Frozen
from losses.l2 import L2Mode, l2_loss


class ConsistencyLoss(nn.Module):
    """weight_3d * ||F_3d(I') - F_3d(I)|| + weight_id * (1 - cos(F_id(I'), F_id(I))) for photos I, renders I'.

    F_3d and F_id are frozen, injected extractors: images (B, 3, H, W) in [0, 1] -> (B, D) features.
    A term is off only when its weight is 0; a positive weight without its extractor is an error.
    """

    def __init__(
        self,
        f3d: nn.Module | None = None,
        fid: nn.Module | None = None,
        weight_3d: float = 1.0,
        weight_id: float = 1.0,
        mode: L2Mode = "mse",
    ) -> None:
        super().__init__()
        for name, extractor, weight in (("f3d", f3d, weight_3d), ("fid", fid, weight_id)):
            if weight > 0 and extractor is None:
                raise ValueError(
                    f"ConsistencyLoss: {name} is None but its weight is {weight}; "
                    f"pass the extractor or set the weight to 0"
                )
        self.f3d = None if f3d is None or weight_3d == 0 else Frozen(f3d)
        self.fid = None if fid is None or weight_id == 0 else Frozen(fid)
        self.weight_3d, self.weight_id = weight_3d, weight_id
        self.mode = mode

    def forward(self, photos: torch.Tensor, renders: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Return the weighted sum and its terms ("3d", "id"); gradients reach the renders only."""
        loss, terms = renders.new_zeros((), dtype=torch.float32), {}
        if self.f3d is not None:
            with torch.no_grad():  # the photo side is data: no graph needed
                target = self.f3d(photos).float()
            terms["3d"] = l2_loss(self.f3d(renders).float(), target, self.mode)
            loss = loss + self.weight_3d * terms["3d"]
        if self.fid is not None:
            with torch.no_grad():
                target = self.fid(photos).float()
            terms["id"] = (1 - F.cosine_similarity(self.fid(renders).float(), target, dim=1)).mean()
            loss = loss + self.weight_id * terms["id"]
        return loss, {k: v.detach() for k, v in terms.items()}
