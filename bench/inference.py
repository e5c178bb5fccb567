"""Inference speed on the CPU: which path runs our models fastest, their FLOP utilisation, F2P, photo alignment.

`python -m bench.inference` (the default run) writes bench/results/inference.json and the table in
bench/README.md: for the shipped default model and the paper's E + R (untrained: speed does not depend on the
weights) at 64, 128 and 256 px, the eager, channels-last, torch.compile and onnxruntime paths (eval.fast_inference),
each with images/s, its ratio to eager, its FLOP utilisation (against this machine's own dense matmul FLOP/s,
measured in the same run) and whether its outputs are within 1e-4 of eager's; the fastest correct one is the row's
`chosen` path. Also F2P's 400 optimisation steps beside the paper's rows (the paper's ~10^3 Hz vs ~1 Hz), and
detection + landmarks per photo (eval/align.py). Library: bench/inference_paths.py.

GPU: `python -m bench.inference --device cuda --sizes 256 --batch 1 256 --variants fp32 bf16 channels_last
cudnn_benchmark compile --out FILE` (README untouched) measures the paper's E + R along a ladder of settings. Each
variant adds one setting to the one before it (VARIANTS), so a row says what that setting bought; a variant that
fails is recorded with its error. The references are the GPU's own bf16/fp32 matmul and a 3x3 128->128 conv at
64x64 (the layer that dominates E at 256 px), so utilisation is a ratio to what this card does on dense work, not
to a datasheet.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

from bench import inference_paths
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
GOAL_IMAGES_PER_SECOND = 20_000  # the target: bf16 on one H100 at 256 px


def saver(report: dict, out: Path):
    """save(): writes `report` to `out`, called after every row so that a run cut short keeps what it measured."""

    def save() -> None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report, indent=2) + "\n")

    return save


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


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", help="px; default 64 128 256 (the ladder: 64 256)")
    parser.add_argument(
        "--batch",
        type=int,
        nargs="+",
        help="images per call; default 1, a photo at a time as the photo tool and the app run (the ladder: 16)",
    )
    parser.add_argument("--models", nargs="+", choices=inference_paths.MODELS, default=list(inference_paths.MODELS))
    parser.add_argument("--rounds", type=int, default=5, help="interleaved timing rounds per path; the best counts")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--variants", nargs="+", choices=VARIANTS, help="the GPU ladder instead of the CPU paths")
    parser.add_argument("--f2p-batch", type=int, default=8)
    parser.add_argument("--f2p-steps", type=int, default=10, help="0 leaves F2P out")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    if args.variants is None:
        return paths_run(args)
    args.sizes, args.batch = args.sizes or [64, 256], args.batch or [16]
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

    save = saver(report, args.out)

    save()
    for size in args.sizes:
        theirs = inference_paths.f2p(size, min(max(args.batch), args.f2p_batch), args.f2p_steps, args.device)
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
    print(f"wrote {args.out}")
    return report


def paths_run(args) -> dict:
    """The default CPU run (module docstring): rows of inference paths per model and size, alignment, README."""
    if args.device != "cpu":
        raise SystemExit("the inference paths are measured on the CPU; a GPU takes --variants (the ladder)")
    import onnxruntime

    batch = (args.batch or [1])[0]
    # A fresh inductor cache: torch.compile's first call is timed as a new user meets it, not from an earlier run's.
    cache = tempfile.TemporaryDirectory()
    os.environ["TORCHINDUCTOR_CACHE_DIR"] = cache.name
    refs = references("cpu")
    refs["fp32"]["matmul"] = max(refs["fp32"]["matmul"], inference_paths.matmul_reference())
    report = {
        "machine": f"{device_name('cpu')}, {time.strftime('%Y-%m-%d')}",
        "device": device_name("cpu"),
        "torch": torch.__version__,
        "onnxruntime": onnxruntime.__version__,
        "torch_threads": torch.get_num_threads(),
        "load_average_at_start": inference_paths.load_average(),
        "matmul_flops_per_second": refs["fp32"]["matmul"],
        "references_flops_per_second": refs,
        "rows": [],
        "errors": [],
    }

    save = saver(report, args.out)

    save()
    report["alignment"] = inference_paths.alignment_milliseconds()
    report["app_round_trip"] = inference_paths.app_round_trip_milliseconds()
    save()
    inference_paths.path_rows(
        args.models,
        args.sizes or inference_paths.SIZES,
        batch,
        args.rounds,
        args.f2p_batch,
        args.f2p_steps,
        report["matmul_flops_per_second"],
        report,
        save,
    )
    report["load_average_at_end"] = inference_paths.load_average()
    # Utilisation against the best matmul rate seen at either end of the run (the cores were shared).
    report["matmul_flops_per_second_at_end"] = inference_paths.matmul_reference()
    inference_paths.set_utilisation(
        report, max(report["matmul_flops_per_second"], report["matmul_flops_per_second_at_end"])
    )
    save()
    cache.cleanup()
    if args.out == RESULTS:
        write_readme(report)
    print(inference_paths.summary(report))
    print(f"wrote {args.out}")
    return report


def write_readme(report: dict) -> None:
    """The paths table between the inference-bench markers of bench/README.md."""
    begin, end = "<!-- inference-bench:begin -->", "<!-- inference-bench:end -->"
    load = ", ".join(f"{x:g}" for x in report["load_average_at_start"])
    # Other work on the cores lowers the rates (and the matmul reference) more than the ratios between paths.
    busy = max(report["load_average_at_start"][0], report.get("load_average_at_end", [0])[0]) > 1.5
    note = "the machine was shared with other work, so read the ratios, not the absolute rates" if busy else "idle"
    block = (
        f"{begin}\nMeasured by `python -m bench.inference` on {report['machine']} (CPU, batch "
        f"{report['rows'][0]['batch'] if report['rows'] else 1}; load average {load} at the start: {note}).\n\n"
        + inference_paths.readme_block(report)
        + f"\n{end}"
    )
    text = README.read_text()
    if begin in text:
        text = text[: text.index(begin)] + block + text[text.index(end) + len(end) :]
    else:
        text += "\n## Inference paths\n\n" + block + "\n"
    README.write_text(text)
    print(f"wrote {README}")


if __name__ == "__main__":
    main()
