"""The photo-reader study -> studies/photo_reader/results (readers.py). Not in the paper.

python -m studies.photo_reader [--variants pixels ...] [--seeds 0] [--default weights/default/model.pt]
    [--means pixels ...] [--identities 1000] [--set KEY=VALUE ...] [--out studies/photo_reader/results]

Trains every variant (reusing finished runs in --runs), then scores them, the shipped default model and the mean
of each with the default model in one likeness-benchmark pass (held-out recogniser, 256 px): photo_reader.json and
TABLE.md.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from eval.benchmarks import held_out
from eval.descriptors import DEFAULT_MODEL
from eval.likeness_bench import add_study_arguments, check_study_arguments, study_report, write_report
from eval.preflight import file_problem
from studies.photo_reader.readers import REPO, VARIANTS, readers, train


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m studies.photo_reader", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0], help="seeds of every variant")
    parser.add_argument("--default", default=str(DEFAULT_MODEL), help="the shipped model, a reference row")
    parser.add_argument(
        "--means", nargs="*", choices=VARIANTS, help="variants also averaged with --default (default: every one)"
    )
    add_study_arguments(parser, REPO / "runs")
    parser.add_argument("--out", type=Path, default=REPO / "studies/photo_reader/results")
    args = parser.parse_args(argv)
    if args.means and (missing := sorted(set(args.means) - set(args.variants))):
        parser.error(f"--means {' '.join(missing)}: not among --variants")
    if args.default and (problem := file_problem(args.default, "model file")):
        parser.error(f"--default {args.default}: {problem}")
    check_study_arguments(parser, args)
    return args


def main(argv: list[str] | None = None) -> dict:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    args = parse_args(argv)
    extra = [f"--{setting}" for setting in args.set]
    checkpoints = {"default": Path(args.default)} if args.default else {}
    averaged = args.variants if args.means is None else args.means
    means = {}  # a pixel reader averaged with the shipped model: the two read different sliders (README)
    for variant in args.variants:
        for seed in args.seeds:
            checkpoints[name := f"{variant}-s{seed}"] = train(variant, seed, args.runs, extra)
            if args.default and variant in averaged:
                means[f"mean-{name}"] = ("default", name)
    held = held_out.build(args.root, args.identities, pairs_per_fold=args.pairs_per_fold)
    report = study_report(held, readers(checkpoints, means), "likeness.photo_reader", argv, args.resamples)
    report |= {
        "variants": {name: list(VARIANTS[name]) for name in args.variants},
        "means": {name: list(members) for name, members in means.items()},
        "checkpoints": {
            name: str(path.resolve().relative_to(REPO) if path.resolve().is_relative_to(REPO) else path)
            for name, path in checkpoints.items()
        },
        "notes": [
            "Not in the paper: readers of the photo's pixels (timm ResNet-18, or ResNet-10-T where the row says "
            "resnet10t, from scratch), trained on photo-style renders with their known parameters; 'default' is "
            f"{args.default or 'not scored'}; 'mean-V' the mean of the default model's and V's parameters "
            "(models.readers.MeanOfReaders, nothing fitted).",
            *report["notes"],
        ],
    }
    write_report(report, args.out, "photo_reader", "Photo readers")
    return report


if __name__ == "__main__":
    main()
