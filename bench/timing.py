"""Timing for the speed benchmarks (bench/inference.py, bench/training.py): rates with the GPU queue drained,
this machine's own dense FLOP/s, the ladder of speed settings (VARIANTS), and the device's name."""

from __future__ import annotations

import platform
import time

import torch
import torch.nn.functional as F

# Each adds one setting to the previous one: bf16 autocast, NHWC tensors, cuDNN's algorithm search, torch.compile.
VARIANTS = ("fp32", "bf16", "channels_last", "cudnn_benchmark", "compile")


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def rate_per_second(
    fn, batch: int, repeats: int, device: torch.device | str = "cpu", seconds: float = 0.0, warmup: int = 1
) -> float:
    """Items per second over at least `repeats` calls and `seconds` of wall-clock (GPU queue drained)."""
    device = torch.device(device)
    for _ in range(warmup):  # allocation, kernel choice and compilation are not speed
        fn()
    _sync(device)
    count, began = 0, time.perf_counter()
    while count < repeats or time.perf_counter() - began < seconds:
        fn()
        count += 1
    _sync(device)
    return batch * count / (time.perf_counter() - began)


def matmul_flops_per_second(
    n: int = 1024, repeats: int = 10, device: str = "cpu", dtype: torch.dtype = torch.float32
) -> float:
    """The machine's own dense matmul rate: the denominator of utilisation."""
    device = torch.device(device)
    a, b = torch.randn(n, n, device=device, dtype=dtype), torch.randn(n, n, device=device, dtype=dtype)
    return 2 * n**3 * rate_per_second(lambda: a @ b, 1, repeats, device)


@torch.inference_mode()
def conv_flops_per_second(
    batch: int = 64, repeats: int = 10, device: str = "cpu", dtype: torch.dtype = torch.float32
) -> float:
    """The machine's rate on E's dominant layer, a 3x3 128->128 conv at 64x64: the best of NCHW and NHWC."""
    device = torch.device(device)
    weight = torch.randn(128, 128, 3, 3, device=device, dtype=dtype)
    best = 0.0
    for layout in (torch.contiguous_format, torch.channels_last):
        x = torch.randn(batch, 128, 64, 64, device=device, dtype=dtype).contiguous(memory_format=layout)
        w = weight.contiguous(memory_format=layout)
        best = max(best, rate_per_second(lambda x=x, w=w: F.conv2d(x, w, padding=1), batch, repeats, device))
    return best * 2 * 128 * 128 * 9 * 64 * 64


def variant_settings(variant: str) -> dict:
    """Which settings a variant switches on: its own and every one before it in VARIANTS."""
    level = VARIANTS.index(variant)
    return {name: level >= VARIANTS.index(name) for name in VARIANTS[1:]}


def tf32_settings() -> dict:
    """Whether fp32 matmuls and convolutions may run as TF32 on the GPU (PyTorch's defaults: no and yes)."""
    return {"matmul": torch.backends.cuda.matmul.allow_tf32, "cudnn": torch.backends.cudnn.allow_tf32}


def device_name(device: str) -> str:
    """The accelerator's name, or the CPU's architecture and thread count."""
    if torch.device(device).type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"{platform.machine()}, {torch.get_num_threads()} torch threads"
