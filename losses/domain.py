"""Domain loss (eq. 6-7): squared MMD between photos and screenshots, on features f and parameters p."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, get_args

import torch
from torch import nn

from losses.distributed import all_gather_with_grad

# sigma^2 = scale * median(||a - b||^2): a sum of five kernels from half to twice the median distance.
BANDWIDTH_SCALES = (0.25, 0.5, 1.0, 2.0, 4.0)


def mmd2(
    x: torch.Tensor, y: torch.Tensor, sigma: float | None = None, scales: Sequence[float] = BANDWIDTH_SCALES
) -> torch.Tensor:
    """Biased squared MMD between samples x (n, d) and y (m, d) with Gaussian kernels (eq. 6-7).

    Kernel exp(-||a - b||^2 / (2 sigma^2)). With `sigma` given, that one kernel; otherwise the sum of
    kernels with sigma^2 = s * median pairwise squared distance of x and y together, s in `scales`.
    The biased estimator (all pairs, diagonals included) is the RKHS distance of eq. 6 between the
    two empirical means: >= 0, and exactly 0 for identical sets.
    """
    # float64: |a|^2 + |b|^2 - 2ab cancels catastrophically when samples nearly coincide (collapsed
    # features), which made the estimate negative and rewarded the collapse; differences would cost
    # O(n^2 d) memory at paper batch sizes.
    z = torch.cat([x, y]).flatten(1).double()
    sq = z.pow(2).sum(1)
    # Squared distances without a sqrt, so the gradient at zero distance (the diagonal) is finite.
    d2 = (sq[:, None] + sq[None, :] - 2 * z @ z.T).clamp_min(0)
    if sigma is not None:
        sigma2 = torch.tensor([float(sigma) ** 2], device=z.device, dtype=z.dtype)
    else:
        n = z.shape[0]
        off_diagonal = d2.detach()[~torch.eye(n, dtype=torch.bool, device=z.device)]
        # Detached: the bandwidth follows the data but is not a way for the network to shrink the loss.
        median = off_diagonal.median() if off_diagonal.numel() else d2.new_ones(())
        # Floor: with (nearly) identical samples the median is ~0 and the kernels would amplify rounding.
        sigma2 = torch.tensor(list(scales), device=z.device, dtype=z.dtype) * median.clamp_min(1e-6)
    k = torch.exp(-d2[None] / (2 * sigma2[:, None, None])).sum(0)
    n = x.shape[0]
    # The biased estimator is >= 0 exactly; the clamp only removes rounding below zero.
    return (k[:n, :n].mean() + k[n:, n:].mean() - 2 * k[:n, n:].mean()).clamp_min(0).float()


def linear_mmd2(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Squared MMD with the linear kernel k(a, b) = a.b / d: the squared distance of the two means, per dimension.

    Not the paper's kernel: eq. 7's Gaussian one, whose within-set terms a network can also lower by making
    every output alike. This one only moves the two sets' means together (DDC, Tzeng et al. 2014).
    """
    x, y = x.flatten(1).float(), y.flatten(1).float()
    return (x.mean(0) - y.mean(0)).pow(2).mean()


Kernel = Literal["gaussian", "linear"]


class DomainLoss(nn.Module):
    """Eq. 6: MMD^2(f_source, f_target) + MMD^2(p_source, p_target)."""

    def __init__(
        self,
        sigma_features: float | None = None,
        sigma_params: float | None = None,
        scales: Sequence[float] = BANDWIDTH_SCALES,
        gather: bool = True,
        on_features: bool = True,
        kernel: Kernel = "gaussian",
    ) -> None:
        super().__init__()
        if kernel not in get_args(Kernel):
            raise ValueError(f"MMD kernel must be 'gaussian' (eq. 7) or 'linear' (the means), got {kernel!r}")
        self.kernel = kernel
        self.sigma_features, self.sigma_params = sigma_features, sigma_params
        # False keeps eq. 6's parameter term only: the 1024-d feature term is the one that can be lowered by
        # making every input look alike to the regressor (bench/README.md).
        self.on_features = on_features
        self.scales = tuple(float(s) for s in scales)
        self.gather = gather  # under DDP: the MMD of the global batch (more samples, same on every rank)

    def mmd(self, x: torch.Tensor, y: torch.Tensor, sigma: float | None) -> torch.Tensor:
        """Squared MMD of two sets with this loss's kernel (`sigma`: the Gaussian's fixed bandwidth, or None)."""
        return linear_mmd2(x, y) if self.kernel == "linear" else mmd2(x, y, sigma, self.scales)

    def forward(
        self, f_source: torch.Tensor, f_target: torch.Tensor, p_source: torch.Tensor, p_target: torch.Tensor
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Return the summed loss and its two terms ("features", "params")."""
        if self.gather:
            f_source, f_target, p_source, p_target = map(all_gather_with_grad, (f_source, f_target, p_source, p_target))
        # fp32: exp(-d^2 / sigma^2) of 1024-d features is too coarse in bf16.
        with torch.autocast(f_source.device.type, enabled=False):
            features = self.mmd(f_source, f_target, self.sigma_features) if self.on_features else f_source.new_zeros(())
            params = self.mmd(p_source, p_target, self.sigma_params)
        return features + params, {"features": features.detach(), "params": params.detach()}
