"""Train, export, score and document the shipped default model (pretrained.py; README.md). `make pretrained`.

python -m studies.pretrained [--budget-minutes 20] [--steps N] [--set KEY=VALUE ...] [--score | --no-score]
    [--likeness-args '--workers 2'] [--runs runs] [--out weights/default]

Writes OUT/model.pt (the network alone, < 20 MB), OUT/model.json (its metadata), OUT/MODEL_CARD.md, and with --score
OUT/likeness.json and .md (the likeness benchmark with the model as row `default`).
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from studies.pretrained.pretrained import REPO, export, fit, fit_command, metadata, model_card, score


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m studies.pretrained", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--budget-minutes", type=float, default=20.0, help="fitting time (trainer.max_time)")
    parser.add_argument("--steps", type=int, help="also stop after this many optimizer steps (trainer.max_steps)")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="any LightningCLI setting, e.g. trainer.devices=2",
    )
    parser.add_argument(
        "--score",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="run the likeness benchmark on the export (renders data/benchmarks/likeness-256 on first use)",
    )
    parser.add_argument("--likeness-args", default="", help="more arguments for python -m bench.likeness, one string")
    parser.add_argument("--runs", type=Path, default=REPO / "runs", help="run.root")
    parser.add_argument("--out", type=Path, default=REPO / "weights/default", help="where model.pt and its card go")
    args = parser.parse_args(argv)
    if args.budget_minutes <= 0:
        parser.error(f"--budget-minutes must be above 0, got {args.budget_minutes}")
    if args.steps is not None and args.steps < 1:
        parser.error(f"--steps must be at least 1, got {args.steps}")
    if bad := [setting for setting in args.set if "=" not in setting or setting.startswith("=")]:
        parser.error(f"--set takes KEY=VALUE, got {bad}")
    if args.out.exists() and not args.out.is_dir():
        parser.error(f"--out {args.out}: is a file, not a folder")
    return args


def main(argv: list[str] | None = None) -> dict:
    """Fit, export, optionally score, write the card; returns the export's metadata."""
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    command = fit_command(args.runs.resolve(), args.budget_minutes, args.steps, args.set)
    checkpoint, seconds = fit(command, args.runs.resolve())
    meta = metadata(
        checkpoint, shlex.join(["python", "-m", "studies.pretrained", *argv]), command, seconds, args.budget_minutes
    )
    model = export(checkpoint, args.out, meta)
    print(f"wrote {model} ({model.stat().st_size / 2**20:.2f} MB) from {checkpoint}", flush=True)
    report = score(model, args.out, shlex.split(args.likeness_args)) if args.score else None
    card = args.out / "MODEL_CARD.md"
    card.write_text(model_card(meta, model, report))
    print(f"wrote {card}")
    return meta


if __name__ == "__main__":
    main()
