"""The learning curve of the demo regressions -> studies/learning_curve/results (curve.py).

python -m studies.learning_curve [--objectives paper supervised] [--sizes 64 128] [--epochs 30]
    [--identities 200] [--set KEY=VALUE ...] [--imitator-set KEY=VALUE ...] [--out studies/learning_curve/results]

Trains one fit per (objective, size) with a snapshot after every validation (reusing finished runs in --runs),
scores every snapshot and the shipped default model on the likeness benchmark (held-out recogniser, 256 px; by
default 200 people, its own set beside the full one), and writes learning_curve.json, TABLE.md and
learning_curve.png. CPU hours at the defaults (the 128 px fits cost ~4x the 64 px ones).
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from eval.benchmarks import held_out
from eval.descriptors import DEFAULT_MODEL, ReaderDescriptor, load_parameter_model
from eval.likeness_bench import study_report, write_report
from studies.learning_curve.curve import (
    OBJECTIVES,
    REPO,
    SIZES,
    curve_rows,
    plot,
    screenshots_per_step,
    snapshot_step,
    train,
)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m studies.learning_curve",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--objectives", nargs="+", default=list(OBJECTIVES), choices=OBJECTIVES)
    parser.add_argument("--sizes", type=int, nargs="+", default=list(SIZES), choices=SIZES)
    parser.add_argument("--epochs", type=int, default=30, help="epochs of 50 batches per fit (the demo: 6)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="a regression setting")
    parser.add_argument("--imitator-set", action="append", default=[], metavar="KEY=VALUE", help="an imitator setting")
    parser.add_argument("--runs", type=Path, default=REPO / "runs")
    parser.add_argument("--identities", type=int, default=200)
    parser.add_argument("--pairs-per-fold", type=int, default=120)
    parser.add_argument("--root", help="the benchmark's folder (default data/benchmarks/likeness-256-IDENTITIES)")
    parser.add_argument("--reference", type=Path, default=DEFAULT_MODEL, help="a model drawn as a dashed line")
    parser.add_argument("--resamples", type=int, default=2000)
    parser.add_argument("--out", type=Path, default=REPO / "studies/learning_curve/results")
    args = parser.parse_args(argv)
    if args.epochs < 1:
        parser.error(f"--epochs must be at least 1, got {args.epochs}")
    if bad := [s for s in args.set + args.imitator_set if "=" not in s or s.startswith("=")]:
        parser.error(f"--set takes KEY=VALUE, got {bad}")
    try:
        held_out.check_shape(args.identities, 4, args.pairs_per_fold, 10)
    except ValueError as error:
        parser.error(f"--identities {args.identities} --pairs-per-fold {args.pairs_per_fold}: {error}")
    if args.reference is not None and not args.reference.is_file():
        parser.error(f"--reference {args.reference}: no such file")
    return args


def main(argv: list[str] | None = None) -> dict:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    args = parse_args(argv)
    extra, imitator_extra = ([f"--{setting}" for setting in settings] for settings in (args.set, args.imitator_set))
    snapshots, methods = {}, {}
    for objective in args.objectives:
        for size in args.sizes:
            for path in train(objective, size, args.epochs, args.runs, extra, imitator_extra):
                step = snapshot_step(path)
                name = f"{objective}-{size}-step{step}"
                snapshots[name] = (objective, size, step, screenshots_per_step(path))
                methods[name] = ReaderDescriptor(name, *load_parameter_model(path))
    if args.reference is not None:
        methods["default"] = ReaderDescriptor("default", *load_parameter_model(args.reference))
    root = args.root or f"{held_out.ROOT}-{args.identities}"
    held = held_out.build(root, args.identities, pairs_per_fold=args.pairs_per_fold)
    report = study_report(held, methods, "likeness.learning_curve", argv, args.resamples)
    rows = curve_rows(report, snapshots)
    references = {"default model": report["rows"]["default"]} if "default" in methods else {}
    report |= {
        "epochs": args.epochs,
        "curve": rows,
        "notes": [
            "Screenshots seen = optimizer steps x the batch's screenshots (as many synthetic photos again).",
            f"The StepLR step is 2/3 of the epochs ({args.epochs}); every snapshot is taken after a validation.",
            *report["notes"],
        ],
    }
    write_report(report, args.out, "learning_curve", "Learning curve")
    plot(rows, references, args.out / "learning_curve.png")
    return report


if __name__ == "__main__":
    main()
