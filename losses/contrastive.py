"""Contrastive loss (eq. 8): InfoNCE in parameter space across photos of the same person."""

from __future__ import annotations

import torch
from pytorch_metric_learning.distances import CosineSimilarity, DotProductSimilarity
from pytorch_metric_learning.losses import NTXentLoss
from torch import nn

from losses.distributed import all_gather_with_grad


class ContrastiveLoss(nn.Module):
    """Eq. 8 over a batch of photo parameters: same identity = positive, other identities = negatives.

    pytorch-metric-learning's NTXentLoss with identity labels computes, for every ordered pair (q, q+)
    of two photos of one person,
        -log( exp(s(q, q+)/tau) / (exp(s(q, q+)/tau) + sum_{n: other identity} exp(s(q, n)/tau)) )
    and averages over those pairs: eq. 8 with each photo as the query in turn. Differences from the
    equation's wording, none with P identities x 2 photos except the first:
    - the negatives are all photos of the other people, so 2 per person with 2 photos each (eq. 8
      says "the other K people");
    - with more than 2 photos of a person, the other positives are left out of the denominator.
    s is the dot product of L2-normalised parameter vectors (docs/method.md#contrastive-loss) or, with
    normalize=False, the raw dot product of eq. 8 (unbounded: p.p / 0.07 saturates quickly).
    """

    def __init__(self, temperature: float = 0.07, normalize: bool = True, gather: bool = True) -> None:
        super().__init__()
        distance = CosineSimilarity() if normalize else DotProductSimilarity(normalize_embeddings=False)
        self.ntxent = NTXentLoss(temperature=temperature, distance=distance)
        self.gather = gather  # under DDP: the other ranks' photos are negatives too

    def forward(self, params: torch.Tensor, identities: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Return the loss for parameters (B, 267) of photos with identity labels (B,)."""
        if self.gather:
            params, identities = all_gather_with_grad(params), all_gather_with_grad(identities)
        # Without a positive pair NTXentLoss silently returns 0: that is a sampler bug, say so.
        if identities.unique().numel() == identities.numel():
            raise ValueError(
                "ContrastiveLoss got no two photos of one identity: the source batch must hold P identities x 2 photos"
            )
        with torch.autocast(params.device.type, enabled=False):  # logits s/0.07 in bf16 lose ~0.1
            loss = self.ntxent(params.float(), identities)
        return loss, {}
