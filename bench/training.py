"""Imitator training throughput: images/s of Adam steps on the paper-scale imitator (256 px, batch 128).

`python -m bench.training --device cuda --out FILE` times forward + L2 loss + backward + Adam step on random
tensors (speed does not depend on the data) for each variant of bench.inference.VARIANTS up to
`cudnn_benchmark` (each adds bf16 autocast, NHWC tensors, cuDNN's algorithm search to the one before), with
the peak GPU memory and the FLOP utilisation against this machine's own dense matmul in the same run.
`--device cpu --size 64 --batch 4 --steps 2` is the CPU smoke size.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from bench.timing import (
    VARIANTS,
    device_name,
    matmul_flops_per_second,
    rate_per_second,
    tf32_settings,
    variant_settings,
)

RESULTS = Path(__file__).with_name("results") / "training.json"
LEARNING_RATE = 3e-4  # the paper's (experiments/imitator.yaml); speed does not depend on it


def imitator_steps(
    size: int,
    batch: int,
    device: str = "cpu",
    variant: str = "fp32",
    steps: int = 20,
    warmup: int = 3,
    net: nn.Module | None = None,
) -> dict:
    """Images/s, FLOPs and peak GPU memory of Adam steps on `net` (default Imitator(size)) with an L2 loss."""
    from game.parameters import NUM_PARAMETERS
    from models.imitator import Imitator

    device, on = torch.device(device), variant_settings(variant)
    layout = torch.channels_last if on["channels_last"] else torch.contiguous_format
    net = (net if net is not None else Imitator(image_size=size)).to(device).train().to(memory_format=layout)
    optimizer = torch.optim.Adam(net.parameters(), lr=LEARNING_RATE)
    parameters = torch.rand(batch, NUM_PARAMETERS, device=device) * 5 - 2.5
    screenshots = torch.rand(batch, 3, size, size, device=device).contiguous(memory_format=layout)
    forward = net

    def step() -> None:
        with torch.autocast(device.type, torch.bfloat16, enabled=on["bf16"]):
            loss = F.mse_loss(forward(parameters).float(), screenshots)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    benchmark = torch.backends.cudnn.benchmark
    torch.backends.cudnn.benchmark = on["cudnn_benchmark"]
    try:
        step()  # Adam's state and the allocator's pools exist from here on
        with FlopCounterMode(display=False) as counter:
            step()
        if on["compile"]:  # after counting: the counter sees the eager operations
            torch.compiler.reset()
            forward = torch.compile(net)
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        rate = rate_per_second(step, batch, steps, device, warmup=warmup)
    finally:
        torch.backends.cudnn.benchmark = benchmark
    flops = counter.get_total_flops() / batch
    peak = torch.cuda.max_memory_allocated(device) if device.type == "cuda" else None
    return {
        "images_per_second": rate,
        "seconds_per_step": batch / rate,
        "flops_per_image": flops,
        "flops_per_second": rate * flops,
        "peak_memory_bytes": peak,
    }


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--variants", nargs="+", choices=VARIANTS, default=["fp32", "bf16"])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    cuda = torch.device(args.device).type == "cuda"
    matmul = {"fp32": matmul_flops_per_second(8192 if cuda else 1024, device=args.device)}
    if cuda:
        matmul["bf16"] = matmul_flops_per_second(8192, 30, args.device, torch.bfloat16)
    report = {
        "machine": f"{device_name(args.device)}, {time.strftime('%Y-%m-%d')}",
        "device": device_name(args.device),
        "torch": torch.__version__,
        "size": args.size,
        "batch": args.batch,
        "optimizer": "Adam",
        "loss": "l2",
        "tf32": tf32_settings(),
        "matmul_flops_per_second": matmul,
        "rows": [],
        "errors": [],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    for variant in args.variants:
        try:
            row = imitator_steps(args.size, args.batch, args.device, variant, args.steps, args.warmup)
        except Exception as error:  # noqa: BLE001 - one failing variant must not hide the others
            report["errors"].append({"variant": variant, "error": f"{type(error).__name__}: {error}"[:2000]})
            print(f"{variant}: FAILED {report['errors'][-1]['error'][:300]}")
        else:
            ref = matmul["bf16" if variant_settings(variant)["bf16"] and "bf16" in matmul else "fp32"]
            report["rows"].append({"variant": variant, **row, "flop_utilisation": row["flops_per_second"] / ref})
            peak = "" if row["peak_memory_bytes"] is None else f", peak {row['peak_memory_bytes'] / 2**30:.2f} GiB"
            print(
                f"{args.size} px, batch {args.batch}, {variant}: {row['images_per_second']:.1f} images/s "
                f"({row['seconds_per_step'] * 1e3:.1f} ms/step), "
                f"utilisation {report['rows'][-1]['flop_utilisation']:.1%}{peak}"
            )
        args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}")
    return report


if __name__ == "__main__":
    main()
