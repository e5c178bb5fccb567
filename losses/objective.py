"""The full objective (eq. 12): the four losses with their lambda weights."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any, NamedTuple

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


@dataclass(frozen=True)
class ObjectiveSettings:
    """Eq. 12's lambdas and its losses' settings (`model.init_args.objective`); the defaults are the paper's."""

    lambda_restored: float = 1.0
    lambda_domain: float = 0.01
    lambda_contrastive: float = 0.02
    lambda_consistency: float = 0.02
    beta: float = 0.25  # L_restored: weight of L_differ
    weight_3d: float = 1.0  # L_consistency: weight of L_3d
    weight_id: float = 1.0  # L_consistency: weight of L_id
    temperature: float = 0.07  # L_contrastive's tau
    normalize_contrastive: bool = True
    differ_on_source: bool = False  # eq. 4 takes L_differ over screenshots; True adds the photos' term
    mmd_sigma_features: float | None = None  # None: the median heuristic
    mmd_sigma_params: float | None = None
    mmd_on_features: bool = True
    mmd_kernel: Kernel = "gaussian"
    l2_mode: L2Mode = "mse"

    @classmethod
    def of(cls, settings: ObjectiveSettings | dict, flat: dict[str, Any] | None = None) -> ObjectiveSettings:
        """`settings` as this class (a checkpoint's hyper-parameters hold a dict), with `flat` fields set on top:
        checkpoints from before `objective` hold them as top-level hyper-parameters."""
        settings = cls(**settings) if isinstance(settings, dict) else settings
        unknown = set(flat or {}) - {f.name for f in fields(cls)}
        if unknown:
            raise TypeError(
                f"unexpected arguments {sorted(unknown)}; the objective's are {[f.name for f in fields(cls)]}"
            )
        return replace(settings, **flat) if flat else settings


PAPER_OBJECTIVE = ObjectiveSettings()


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
        settings: ObjectiveSettings = PAPER_OBJECTIVE,
        mmd_scales: tuple[float, ...] = BANDWIDTH_SCALES,
        gather: bool = True,
    ) -> None:
        super().__init__()
        s = self.settings = settings
        self.lambdas = {
            "restored": s.lambda_restored,
            "domain": s.lambda_domain,
            "contrastive": s.lambda_contrastive,
            "consistency": s.lambda_consistency,
        }
        # The imitator lives here even when lambda_restored is 0: the consistency term renders with it.
        self.restored = RestoredLoss(imitator, s.beta, s.l2_mode)
        self.domain = (
            DomainLoss(s.mmd_sigma_features, s.mmd_sigma_params, mmd_scales, gather, s.mmd_on_features, s.mmd_kernel)
            if s.lambda_domain
            else None
        )
        self.contrastive = (
            ContrastiveLoss(s.temperature, s.normalize_contrastive, gather) if s.lambda_contrastive else None
        )
        self.consistency = (
            ConsistencyLoss(f3d, fid, s.weight_3d, s.weight_id, s.l2_mode) if s.lambda_consistency else None
        )
        # Eq. 4 takes L_differ over screenshots; True adds the photos' commitment term as well.
        self.differ_on_source = s.differ_on_source

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
