"""Inference speed: our one-pass regressor against F2P's per-photo optimisation, and FLOP utilisation.

`python -m bench.inference [--sizes 64 256]` writes bench/results/inference.json and a table in
bench/README.md. Everything is a ratio measured in the same run: ours vs F2P (the paper's ~10^3 Hz vs
~1 Hz claim), and achieved FLOP/s vs this machine's own dense-matmul FLOP/s (utilisation).
Untrained networks: speed does not depend on the weights.
"""
from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

RESULTS = Path(__file__).with_name("results") / "inference.json"
README = Path(__file__).with_name("README.md")
F2P_STEPS = 400


def _rate(fn, batch: int, repeats: int) -> float:
    fn()                                            # warm-up: allocation and kernel choice are not speed
    began = time.perf_counter()
    for _ in range(repeats):
        fn()
    return batch * repeats / (time.perf_counter() - began)


def matmul_flops_per_second(n: int = 1024, repeats: int = 10) -> float:
    """The machine's own dense fp32 matmul rate: the denominator of utilisation."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    began = time.perf_counter()
    for _ in range(repeats):
        a @ b
    return 2 * n ** 3 * repeats / (time.perf_counter() - began)


@torch.inference_mode()
def ours(size: int, batch: int) -> dict:
    from models.regressor import Regressor
    from models.vqvae2 import VQVAE2

    encoder, regressor = VQVAE2(image_size=size).eval(), Regressor(image_size=size).eval()
    images = torch.rand(batch, 3, size, size)
    run = lambda: regressor(encoder(images).features)[1]
    with FlopCounterMode(display=False) as counter:
        run()
    flops = counter.get_total_flops() / batch
    rate = _rate(run, batch, repeats=3)
    return {"images_per_second": rate, "flops_per_image": flops, "flops_per_second": rate * flops}


def f2p(size: int, batch: int, steps: int = 10) -> dict:
    """F2P's rate from a few optimisation steps, scaled to its 400 (each step costs the same)."""
    from eval.baselines.f2p import F2P
    from models.face_id import build_face_id
    from models.imitator import Imitator

    estimator = F2P(Imitator(image_size=size).eval(), build_face_id("dlib"), steps=steps)
    photos = torch.rand(batch, 3, size, size)
    per_step = _rate(lambda: estimator(photos), batch, repeats=2) * steps
    return {"images_per_second": per_step / F2P_STEPS, "measured_steps": steps}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[64, 256])
    parser.add_argument("--batch", type=int, default=16)
    args = parser.parse_args(argv)
    peak = matmul_flops_per_second()
    rows = []
    for size in args.sizes:
        mine, theirs = ours(size, args.batch), f2p(size, min(args.batch, 8))
        rows.append({"size": size, "ours": mine, "f2p": theirs,
                     "speedup_vs_f2p": mine["images_per_second"] / theirs["images_per_second"],
                     "flop_utilisation": mine["flops_per_second"] / peak})
        print(f"{size} px: ours {mine['images_per_second']:.1f}/s, F2P {theirs['images_per_second']:.4f}/s "
              f"(x{rows[-1]['speedup_vs_f2p']:.0f}); utilisation {rows[-1]['flop_utilisation']:.1%}")
    machine = f"{platform.machine()}, {torch.get_num_threads()} torch threads, {time.strftime('%Y-%m-%d')}"
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({"machine": machine, "matmul_flops_per_second": peak, "rows": rows}, indent=2) + "\n")
    table = ["| px | ours images/s | F2P images/s (400 steps) | ours / F2P | GFLOP per image | GFLOP/s achieved | matmul GFLOP/s | utilisation |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        table.append(f"| {r['size']} | {r['ours']['images_per_second']:.1f} | {r['f2p']['images_per_second']:.4f} | "
                     f"{r['speedup_vs_f2p']:.0f}x | {r['ours']['flops_per_image'] / 1e9:.2f} | "
                     f"{r['ours']['flops_per_second'] / 1e9:.1f} | {peak / 1e9:.1f} | {r['flop_utilisation']:.0%} |")
    begin, end = "<!-- inference-bench:begin -->", "<!-- inference-bench:end -->"
    block = f"{begin}\nMeasured by `python -m bench.inference` on {machine} (CPU; no GPU was lent).\n\n" + "\n".join(table) + f"\n{end}"
    text = README.read_text()
    if begin in text:
        text = text[: text.index(begin)] + block + text[text.index(end) + len(end):]
    else:
        text += "\n## Inference: ours vs F2P, and FLOP utilisation\n\n" + block + "\n"
    README.write_text(text)
    print(f"wrote {RESULTS} and {README}")


if __name__ == "__main__":
    main()
