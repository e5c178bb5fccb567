"""Inference speed: our one-pass regressor against F2P's per-photo optimisation, and FLOP utilisation.

`python -m bench.inference [--sizes 64 256]` writes bench/results/inference.json and a table in
bench/README.md. Everything is a ratio measured in the same run: ours vs F2P (the paper's ~10^3 Hz vs
~1 Hz claim), and achieved FLOP/s vs this machine's own dense-matmul FLOP/s (utilisation).
Untrained networks: speed does not depend on the weights.

GPU: `python -m bench.inference --device cuda --sizes 256 --batch 1 256 --variants fp32 bf16 channels_last
cudnn_benchmark compile --out FILE` (README untouched). Each variant adds one setting to the one before it
(VARIANTS), so a row says what that setting bought; a variant that fails is recorded with its error. The
references are the GPU's own bf16/fp32 matmul and a 3x3 128->128 conv at 64x64 (the layer that dominates
E at 256 px), so utilisation is a ratio to what this card does on dense work, not to a datasheet.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

from bench.timing import (
    VARIANTS,
    conv_flops_per_second,
    device_name,
    matmul_flops_per_second,
    rate_per_second,
    tf32_settings,
    variant_settings,
)

RESULTS = Path(__file__).with_name("results") / "inference.json"
README = Path(__file__).with_name("README.md")
F2P_STEPS = 400
GOAL_IMAGES_PER_SECOND = 20_000  # the target: bf16 on one H100 at 256 px


def references(device: str) -> dict:
    """This machine's own dense rates, one per number format the variants use."""
    if torch.device(device).type == "cpu":
        return {"fp32": {"matmul": matmul_flops_per_second(), "conv3x3": conv_flops_per_second(batch=8, repeats=3)}}
    return {
        "fp32": {
            "matmul": matmul_flops_per_second(8192, 10, device),
            "conv3x3": conv_flops_per_second(256, 10, device),
        },
        "bf16": {
            "matmul": matmul_flops_per_second(8192, 30, device, torch.bfloat16),
            "conv3x3": conv_flops_per_second(256, 30, device, torch.bfloat16),
        },
    }


@torch.inference_mode()
def ours(size: int, batch: int, device: str = "cpu", variant: str = "fp32") -> dict:
    from models.regressor import Regressor
    from models.vqvae2 import VQVAE2

    device, on = torch.device(device), variant_settings(variant)
    encoder = VQVAE2(image_size=size).eval().to(device)
    regressor = Regressor(image_size=size).eval().to(device)
    images = torch.rand(batch, 3, size, size, device=device)
    if on["channels_last"]:
        encoder, regressor = (
            encoder.to(memory_format=torch.channels_last),
            regressor.to(memory_format=torch.channels_last),
        )
        images = images.contiguous(memory_format=torch.channels_last)

    def forward(x):
        return regressor(encoder(x).features).parameters

    forward(images)  # the codebooks' k-means init: once, not per image
    with FlopCounterMode(display=False) as counter:
        forward(images)
    flops = counter.get_total_flops() / batch
    if on["compile"]:
        torch.compiler.reset()  # a fresh graph per batch size, not one made dynamic by the last
        forward = torch.compile(forward)

    def run():
        with torch.autocast(device.type, torch.bfloat16, enabled=on["bf16"]):
            return forward(images)

    benchmark = torch.backends.cudnn.benchmark
    torch.backends.cudnn.benchmark = on["cudnn_benchmark"]
    try:
        on_gpu = device.type == "cuda"
        rate = rate_per_second(
            run, batch, repeats=3, device=device, seconds=1.0 if on_gpu else 0.0, warmup=3 if on_gpu else 1
        )
    finally:
        torch.backends.cudnn.benchmark = benchmark
    return {"images_per_second": rate, "flops_per_image": flops, "flops_per_second": rate * flops}


def f2p(size: int, batch: int, steps: int = 10, device: str = "cpu") -> dict:
    """F2P's rate from a few optimisation steps, scaled to its 400 (each step costs the same)."""
    from eval.baselines.f2p import F2P
    from models.face_id import build_face_id
    from models.imitator import Imitator

    device = torch.device(device)
    estimator = F2P(Imitator(image_size=size).eval().to(device), build_face_id("dlib").to(device), steps=steps)
    estimator.content.to(device)
    photos = torch.rand(batch, 3, size, size, device=device)
    per_step = rate_per_second(lambda: estimator(photos), batch, repeats=2, device=device) * steps
    return {"images_per_second": per_step / F2P_STEPS, "measured_steps": steps, "batch": batch}


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[64, 256])
    parser.add_argument("--batch", type=int, nargs="+", default=[16])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--variants", nargs="+", choices=VARIANTS, default=["fp32"])
    parser.add_argument("--f2p-batch", type=int, default=8)
    parser.add_argument("--f2p-steps", type=int, default=10)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    machine = f"{device_name(args.device)}, {time.strftime('%Y-%m-%d')}"
    refs = references(args.device)
    report = {
        "machine": machine,
        "device": device_name(args.device),
        "torch": torch.__version__,
        "matmul_flops_per_second": refs["fp32"]["matmul"],
        "references_flops_per_second": refs,
        "tf32": tf32_settings(),
        "rows": [],
        "errors": [],
    }

    def save() -> None:  # after every row: a run cut short keeps what it measured
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=2) + "\n")

    save()
    for size in args.sizes:
        theirs = f2p(size, min(max(args.batch), args.f2p_batch), args.f2p_steps, args.device)
        for variant in args.variants:  # variants outermost: compilation, the slowest, comes last
            for batch in args.batch:
                try:
                    mine = ours(size, batch, args.device, variant)
                except Exception as error:  # noqa: BLE001 - one failing variant must not hide the others
                    report["errors"].append(
                        {
                            "size": size,
                            "batch": batch,
                            "variant": variant,
                            "error": f"{type(error).__name__}: {error}"[:2000],
                        }
                    )
                    print(f"{size} px, batch {batch}, {variant}: FAILED {report['errors'][-1]['error'][:300]}")
                    save()
                    continue
                ref = refs["bf16" if variant_settings(variant)["bf16"] and "bf16" in refs else "fp32"]
                row = {
                    "size": size,
                    "batch": batch,
                    "variant": variant,
                    "ours": mine,
                    "f2p": theirs,
                    "speedup_vs_f2p": mine["images_per_second"] / theirs["images_per_second"],
                    "flop_utilisation": mine["flops_per_second"] / ref["matmul"],
                    "conv_utilisation": mine["flops_per_second"] / ref["conv3x3"],
                }
                report["rows"].append(row)
                print(
                    f"{size} px, batch {batch}, {variant}: ours {mine['images_per_second']:.1f}/s, "
                    f"F2P {theirs['images_per_second']:.4f}/s (x{row['speedup_vs_f2p']:.0f}); "
                    f"utilisation {row['flop_utilisation']:.1%} of matmul, {row['conv_utilisation']:.1%} of conv"
                )
                save()
    best = max(
        (r["ours"]["images_per_second"] for r in report["rows"] if r["size"] == 256 and r["variant"] != "fp32"),
        default=None,
    )
    report["goal_256px_images_per_second"] = {
        "goal": GOAL_IMAGES_PER_SECOND,
        "best": best,
        "met": best is not None and best >= GOAL_IMAGES_PER_SECOND,
    }
    save()
    if args.out == RESULTS and torch.device(args.device).type == "cpu":
        write_readme(report, machine)
    print(f"wrote {args.out}")
    return report


def write_readme(report: dict, machine: str) -> None:
    """The CPU table between the inference-bench markers of bench/README.md."""
    peak = report["matmul_flops_per_second"]
    table = [
        "| px | ours images/s | F2P images/s (400 steps) | ours / F2P | GFLOP per image | GFLOP/s achieved "
        "| matmul GFLOP/s | utilisation |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in report["rows"]:
        table.append(
            f"| {r['size']} | {r['ours']['images_per_second']:.1f} | {r['f2p']['images_per_second']:.4f} | "
            f"{r['speedup_vs_f2p']:.0f}x | {r['ours']['flops_per_image'] / 1e9:.2f} | "
            f"{r['ours']['flops_per_second'] / 1e9:.1f} | {peak / 1e9:.1f} | {r['flop_utilisation']:.0%} |"
        )
    begin, end = "<!-- inference-bench:begin -->", "<!-- inference-bench:end -->"
    block = (
        f"{begin}\nMeasured by `python -m bench.inference` on {machine} (CPU; no GPU was lent).\n\n"
        + "\n".join(table)
        + f"\n{end}"
    )
    text = README.read_text()
    if begin in text:
        text = text[: text.index(begin)] + block + text[text.index(end) + len(end) :]
    else:
        text += "\n## Inference: ours vs F2P, and FLOP utilisation\n\n" + block + "\n"
    README.write_text(text)
    print(f"wrote {README}")


if __name__ == "__main__":
    main()
