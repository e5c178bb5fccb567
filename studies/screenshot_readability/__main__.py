"""Fit each network NET on screenshots alone through the LightningCLI and score it (readability.py; README.md).

python -m studies.screenshot_readability NET [NET ...] [--steps 1000] [--eval-every 250] [--benchmark]
    [--root DIR] [--count N] [--batch-size B] [--set KEY=VALUE ...] [--runs runs]
    [--out studies/screenshot_readability/results]

Writes OUT/NET.json per network and OUT/TABLE.md (the README's table) for the networks of this call.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from studies.screenshot_readability.readability import (
    NETWORKS,
    REPO,
    benchmark_score,
    config_files,
    fit,
    logged_rows,
    score_held_out,
    table,
    trainable_parameters,
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("networks", nargs="+", metavar="NET", help=", ".join(NETWORKS))
    parser.add_argument("--steps", type=int, default=1000, help="optimizer steps (trainer.max_steps)")
    parser.add_argument("--eval-every", type=int, default=250, help="steps between validations")
    parser.add_argument("--benchmark", action="store_true", help="also score on the demo's photo benchmark")
    parser.add_argument("--root", type=Path, help="the screenshot set (data.init_args.target_root)")
    parser.add_argument("--count", type=int, help="screenshots to render if --root is missing (64 px, seed 0)")
    parser.add_argument("--batch-size", type=int, help="the global batch (data.init_args.batch_size)")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="any LightningCLI setting, e.g. trainer.devices=2",
    )
    parser.add_argument("--runs", type=Path, default=REPO / "runs", help="run.root")
    parser.add_argument("--out", type=Path, default=REPO / "studies/screenshot_readability/results")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.networks) - set(NETWORKS))
    if unknown:  # checked here, not with choices=: see studies.objective_variants
        parser.error(f"unknown network(s) {unknown}; choose from {', '.join(NETWORKS)}")
    if any("=" not in setting for setting in args.set):
        parser.error(f"--set takes KEY=VALUE, got {args.set}")
    return args


def cli_overrides(args: argparse.Namespace) -> list[str]:
    """The LightningCLI flags this call adds to the configs."""
    overrides = {"trainer.max_steps": args.steps, "trainer.val_check_interval": args.eval_every}
    if args.root is not None:
        overrides["data.init_args.target_root"] = args.root.resolve()
    if args.count is not None:
        overrides["data.init_args.generate"] = f"{{count: {args.count}, size: 64, seed: 0}}"
    if args.batch_size is not None:
        overrides["data.init_args.batch_size"] = args.batch_size
    overrides.update(setting.split("=", 1) for setting in args.set)
    return [arg for key, value in overrides.items() for arg in (f"--{key}", str(value))]


def main(argv: list[str] | None = None) -> list[dict]:
    args = parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    overrides, results = cli_overrides(args), []
    for name in args.networks:
        checkpoint = fit(name, args.runs.resolve(), overrides)
        run_dir = checkpoint.parent.parent
        result = {
            "network": name,
            "configs": [str(path.relative_to(REPO)) for path in config_files(name)],
            "overrides": overrides,
            "run": str(run_dir),
            "trainable_parameters": trainable_parameters(checkpoint),
            "rows": logged_rows(run_dir),
            "held_out": score_held_out(checkpoint),
        }
        print(name, json.dumps(result["held_out"]), flush=True)
        if args.benchmark:
            result["benchmark"] = benchmark_score(checkpoint)
            print(name, "benchmark", json.dumps(result["benchmark"]), flush=True)
        (args.out / f"{name}.json").write_text(json.dumps(result, indent=1) + "\n")
        results.append(result)
    (args.out / "TABLE.md").write_text(table(results))
    return results


if __name__ == "__main__":
    main()
