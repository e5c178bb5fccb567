"""Photo -> game-parameter estimators compared in the paper's Table 3, behind one interface.

An estimator has a `name` and maps template-aligned photos (B, 3, S, S) float RGB in [0, 1] to parameters
(B, 267) in [-2.5, 2.5] (docs/contracts.md sections 1-3); `is_parameters = True` marks it as a parameter
descriptor for eval/verify.py (`--baseline KIND=PATH`). Implementations: `eval.baselines.f2p.F2P` (Shi et
al., ICCV 2019: per-photo optimisation through the imitator) and `eval.baselines.fastf2p.FastF2P` (Shi et
al., AAAI 2020: F_id embedding -> translator MLP); our own model is eval/descriptors.py's ParameterDescriptor.
"""

from __future__ import annotations

import time
from typing import Protocol, runtime_checkable

import torch


@runtime_checkable
class ParameterEstimator(Protocol):
    """Anything with a `name` that maps photos (B, 3, S, S) in [0, 1] to game parameters (B, 267)."""

    name: str

    def __call__(self, images: torch.Tensor) -> torch.Tensor: ...


def throughput(estimator: ParameterEstimator, images: torch.Tensor, repeats: int = 1) -> float:
    """Photos per second of `estimator` on `images`, wall clock including the copy back to the CPU."""
    began = time.perf_counter()
    for _ in range(repeats):
        estimator(images).cpu()  # .cpu() waits for an accelerator, so the time covers the whole call
    return repeats * len(images) / (time.perf_counter() - began)


def build_baseline(
    kind: str,
    checkpoint: str,
    face_id: str = "dlib",
    face_id_checkpoint: str | None = None,
    device: str = "cpu",
    **options,
) -> ParameterEstimator:
    """A baseline by kind: 'f2p' (checkpoint = an imitator checkpoint; options go to F2P) or 'fastf2p'
    (checkpoint = a translator checkpoint written by `python -m eval.baselines.fastf2p`)."""
    if kind == "f2p":
        from eval.baselines.f2p import load_f2p

        return load_f2p(checkpoint, face_id, face_id_checkpoint, device=device, **options)
    if kind == "fastf2p":
        from eval.baselines.fastf2p import load_fastf2p

        return load_fastf2p(checkpoint, face_id_checkpoint, device=device)
    raise ValueError(
        f"unknown baseline {kind!r}; expected 'f2p' (an imitator checkpoint) or 'fastf2p' "
        f"(a translator checkpoint from `python -m eval.baselines.fastf2p`)"
    )
