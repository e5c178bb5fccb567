"""The full objective (eq. 12): the four losses with their lambda weights."""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

from losses.consistency import ConsistencyLoss
from losses.contrastive import ContrastiveLoss
from losses.domain import BANDWIDTH_SCALES, DomainLoss, Kernel
from losses.l2 import L2Mode
from losses.restored import RestoredLoss


class DomainBatch(NamedTuple):
    """What E, D and R produced for one domain's mini-batch."""

    images: torch.Tensor  # (B, 3, S, S) in [0, 1]
    features: torch.Tensor  # (B, 1024) f
    params: torch.Tensor  # (B, 267) p
    vq_loss: torch.Tensor  # () L_differ of this batch (VQVAE2Output.loss)
    identities: torch.Tensor | None = None  # (B,) int64 person ids; source photos only


class CrossDomainObjective(nn.Module):
    """lambda_1 L_restored + lambda_2 L_domain + lambda_3 L_contrastive + lambda_4 L_consistency (eq. 12).

    A loss whose lambda is 0 is neither built nor computed (its extractors may then be None).
    Returns the total and the unweighted terms, named for logging ("restored", "restored/param", ...).
    """

    def __init__(
        self,
        imitator: nn.Module,
        f3d: nn.Module | None = None,
        fid: nn.Module | None = None,
        lambda_restored: float = 1.0,
        lambda_domain: float = 0.01,
        lambda_contrastive: float = 0.02,
        lambda_consistency: float = 0.02,
        beta: float = 0.25,
        differ_on_source: bool = False,
        mmd_sigma_features: float | None = None,
        mmd_sigma_params: float | None = None,
        mmd_scales: tuple[float, ...] = BANDWIDTH_SCALES,
        mmd_on_features: bool = True,
        mmd_kernel: Kernel = "gaussian",
        temperature: float = 0.07,
        normalize_contrastive: bool = True,
        weight_3d: float = 1.0,
        weight_id: float = 1.0,
        l2_mode: L2Mode = "mse",
        gather: bool = True,
    ) -> None:
        super().__init__()
        self.lambdas = {
            "restored": lambda_restored,
            "domain": lambda_domain,
            "contrastive": lambda_contrastive,
            "consistency": lambda_consistency,
        }
        # The imitator lives here even when lambda_restored is 0: the consistency term renders with it.
        self.restored = RestoredLoss(imitator, beta, l2_mode)
        self.domain = (
            DomainLoss(mmd_sigma_features, mmd_sigma_params, mmd_scales, gather, mmd_on_features, mmd_kernel)
            if lambda_domain
            else None
        )
        self.contrastive = ContrastiveLoss(temperature, normalize_contrastive, gather) if lambda_contrastive else None
        self.consistency = ConsistencyLoss(f3d, fid, weight_3d, weight_id, l2_mode) if lambda_consistency else None
        # Eq. 4 takes L_differ over screenshots; True adds the photos' commitment term as well.
        self.differ_on_source = differ_on_source

    def forward(self, target: DomainBatch, source: DomainBatch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Total loss and named, detached, unweighted terms for one (screenshots, photos) step."""
        losses: dict[str, tuple[torch.Tensor, dict[str, torch.Tensor]]] = {}
        if self.lambdas["restored"]:
            differ = target.vq_loss + source.vq_loss if self.differ_on_source else target.vq_loss
            losses["restored"] = self.restored(target.params, target.images, differ)
        if self.domain is not None:
            losses["domain"] = self.domain(source.features, target.features, source.params, target.params)
        if self.contrastive is not None:
            if source.identities is None:
                raise ValueError("lambda_contrastive > 0 needs source.identities")
            losses["contrastive"] = self.contrastive(source.params, source.identities)
        if self.consistency is not None:
            renders = self.restored.imitator(source.params)  # I^s' = G(R(D(E(I^s))))
            losses["consistency"] = self.consistency(source.images, renders)
        total = sum(self.lambdas[name] * loss for name, (loss, _) in losses.items())
        if not losses:
            total = target.params.sum() * 0  # all lambdas 0: a zero that still has a graph
        terms = {"total": total.detach()}
        for name, (loss, parts) in losses.items():
            terms[name] = loss.detach()
            terms |= {f"{name}/{part}": value for part, value in parts.items()}
        return total, terms
