"""Gathering a batch-level loss's inputs across DDP ranks, with gradients for each rank's own rows."""

from __future__ import annotations

import torch
import torch.distributed as dist


def is_distributed() -> bool:
    """Whether a process group with more than one rank is running."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


class _AllGather(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        world, rank = dist.get_world_size(), dist.get_rank()
        # Ranks may hold different row counts (a last, short batch): pad to the longest, then trim.
        size = torch.tensor([x.shape[0]], device=x.device)
        sizes = [torch.zeros_like(size) for _ in range(world)]
        dist.all_gather(sizes, size)
        sizes = [int(s) for s in sizes]
        padded = x.new_zeros((max(sizes), *x.shape[1:]))
        padded[: x.shape[0]] = x
        parts = [torch.empty_like(padded) for _ in range(world)]
        dist.all_gather(parts, padded.contiguous())
        ctx.sizes, ctx.rank = sizes, rank
        return torch.cat([part[:n] for part, n in zip(parts, sizes)])

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        # Every rank's loss depends on this rank's rows: sum their gradients here (all_reduce rather
        # than reduce_scatter, which gloo lacks), then keep our own rows.
        grad = grad.contiguous()
        dist.all_reduce(grad)
        start = sum(ctx.sizes[: ctx.rank])
        return grad[start : start + ctx.sizes[ctx.rank]]


def all_gather_with_grad(x: torch.Tensor) -> torch.Tensor:
    """Concatenate x (B_r, ...) from every rank in rank order; identity without a process group.

    Gradients reach each rank's own rows, summed over all ranks' losses. Since DDP averages parameter
    gradients over the N ranks, the result is exactly the gradient of the mean of the ranks' losses:
    for a loss every rank computes identically on the gathered batch (MMD, InfoNCE here), the gradient
    of that one global loss. Every rank must call this (and backward through it) the same number of times.
    """
    if not is_distributed():
        return x
    return _AllGather.apply(x)  # integer tensors (labels) pass through without a graph
