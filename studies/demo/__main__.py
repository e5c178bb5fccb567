"""`make demo`: the whole method at CPU scale on a fresh machine, in stages reused once done.

    1. imitator     experiments/demo/imitator.yaml            -> runs/demo-imitator
    2. regression   experiments/demo/main.yaml                -> runs/demo-main          (the paper's objective)
                    + experiments/demo/supervised.yaml        -> runs/demo-supervised    (the measured best here)
    3. FastF2P      translator on the demo game set           -> runs/demo/fastf2p.ckpt
    4. benchmark    held-out synthetic photos: other identities (seed 2), the correlated "realistic"
                    prior, expressions, glasses and occluders -> data/bench-64/synthetic
    5. verify       ours, F_id's own embedding (upper bound) and FastF2P on the whole benchmark
    6. subset       F2P (400 steps, as published) and every other method on a fixed 20-photo subset:
                    recovery RMSE, speed, and the likeness of the ENGINE's character to the photo
    7. likeness     the likeness benchmark (bench/likeness.py: 1,000 held-out people x 4 photos at 256 px, the
                    held-out recogniser) for the shipped default model (weights/default), both regressions and
                    FastF2P: parameter recovery, likeness, lineup, verification, with intervals
    8. reconstruct  the tool on a real photo that scikit-image ships (NASA's astronaut portrait): the shipped
                    default model, and the paper's objective
    9. report       runs/demo/REPORT.md

`python -m studies.demo [--out runs/demo] [--redo STAGE ...] [--likeness-identities N]` (`make demo`, under 30 min
on 2 cores from a clean clone); the stages are in stages.py.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from studies.demo.report import write_report
from studies.demo.stages import (
    LIKENESS_IDENTITIES,
    MAIN,
    REPO,
    SUPERVISED,
    fastf2p,
    likeness,
    load_benchmark,
    log,
    reconstruct,
    subset,
    train,
    verify,
)


def main(argv=None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="runs/demo")
    parser.add_argument(
        "--redo",
        nargs="*",
        default=[],
        choices=("imitator", "main", "supervised", "fastf2p"),
        help="stages to run again even if their output exists",
    )
    parser.add_argument(
        "--likeness-identities",
        type=int,
        default=LIKENESS_IDENTITIES,
        help="people in the likeness benchmark (4 photos each); fewer is its own, smaller set",
    )
    args = parser.parse_args(argv)
    if args.likeness_identities < 10:
        parser.error(f"--likeness-identities must be at least 10 (a lineup of 10), got {args.likeness_identities}")
    out = REPO / args.out
    out.mkdir(parents=True, exist_ok=True)
    imitator = train(["experiments/demo/imitator.yaml"], REPO / "runs/demo-imitator", "imitator" in args.redo)
    main_ckpt = train([MAIN], REPO / "runs/demo-main", "main" in args.redo)
    supervised = train([MAIN, SUPERVISED], REPO / "runs/demo-supervised", "supervised" in args.redo)
    checkpoints = {"ours": main_ckpt, "ours_supervised": supervised}
    translator = fastf2p(imitator, out, "fastf2p" in args.redo)
    bench = load_benchmark()
    log("verification on the synthetic benchmark")
    verification = verify(checkpoints, translator, bench, out / "verify")
    subset_table = subset(checkpoints, imitator, translator, bench)
    (out / "subset.json").write_text(json.dumps(subset_table, indent=2) + "\n")
    likeness_report = likeness(checkpoints, translator, out, args.likeness_identities)
    side_by_side = {
        "the shipped default model": reconstruct(None, out),
        "the paper's objective": reconstruct(main_ckpt, out),
    }
    runs = {"imitator": imitator, "main": main_ckpt, "supervised": supervised}
    report = write_report(out, verification, subset_table, likeness_report, runs, side_by_side)
    print(likeness_report["markdown"], flush=True)
    log(f"report: {report}")
    return report


if __name__ == "__main__":
    main()
