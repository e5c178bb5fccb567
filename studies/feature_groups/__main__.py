"""The feature-group ablation of the default model's reader -> studies/feature_groups/results (groups.py).

python -m studies.feature_groups [--variants all mesh ...] [--seeds 0] [--all-seeds 0 1 2] [--steps N]
    [--identities 1000] [--set KEY=VALUE ...] [--out studies/feature_groups/results]

Trains every variant (reusing finished runs in --runs), then scores them all in one likeness-benchmark pass
(held-out recogniser, 256 px): feature_groups.json and TABLE.md. Not in the paper.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from eval.benchmarks import held_out
from eval.likeness_bench import add_study_arguments, check_study_arguments, study_report, write_report
from studies.feature_groups.groups import REPO, VARIANTS, sharing_readers, train


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m studies.feature_groups",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0], help="seeds of every variant")
    parser.add_argument("--all-seeds", type=int, nargs="+", default=[0, 1, 2], help="seeds of the 'all' variant")
    parser.add_argument("--steps", type=int, help="optimizer steps per fit (default: the config's 10 epochs)")
    add_study_arguments(parser, REPO / "runs")
    parser.add_argument("--out", type=Path, default=REPO / "studies/feature_groups/results")
    args = parser.parse_args(argv)
    if args.steps is not None and args.steps < 1:
        parser.error(f"--steps must be at least 1, got {args.steps}")
    check_study_arguments(parser, args)
    return args


def main(argv: list[str] | None = None) -> dict:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    args = parse_args(argv)
    extra = [f"--{setting}" for setting in args.set]
    checkpoints = {}
    for variant in args.variants:
        for seed in args.all_seeds if variant == "all" else args.seeds:
            checkpoints[f"{variant}-s{seed}"] = train(variant, seed, args.steps, args.runs, extra)
    held = held_out.build(args.root, args.identities, pairs_per_fold=args.pairs_per_fold)
    report = study_report(held, sharing_readers(checkpoints), "likeness.feature_groups", argv, args.resamples)
    report |= {
        "variants": {name: list(groups) for name, groups in VARIANTS.items() if name in args.variants},
        "checkpoints": {
            name: str(path.relative_to(REPO) if path.is_relative_to(REPO) else path)
            for name, path in checkpoints.items()
        },
        "notes": [
            "Not in the paper: the default model's reader (models.readers.FaceFeatureReader) with some feature groups.",
            *report["notes"],
        ],
    }
    write_report(report, args.out, "feature_groups", "Feature groups")
    return report


if __name__ == "__main__":
    main()
