"""The cross-domain regression losses (paper eq. 3-12), one module each, and their weighted sum."""

from losses.consistency import ConsistencyLoss
from losses.contrastive import ContrastiveLoss
from losses.distributed import all_gather_with_grad
from losses.domain import DomainLoss, linear_mmd2, mmd2
from losses.frozen import Frozen
from losses.objective import PAPER_OBJECTIVE, CrossDomainObjective, DomainBatch, ObjectiveSettings
from losses.restored import RestoredLoss

__all__ = [
    "PAPER_OBJECTIVE",
    "ConsistencyLoss",
    "ContrastiveLoss",
    "CrossDomainObjective",
    "DomainBatch",
    "DomainLoss",
    "Frozen",
    "ObjectiveSettings",
    "RestoredLoss",
    "all_gather_with_grad",
    "linear_mmd2",
    "mmd2",
]
