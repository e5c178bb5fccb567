"""Train, export, score and document the shipped default model (pretrained.py; README.md). `make pretrained`.

python -m studies.pretrained [--members face-features pixels] [--budget-minutes 60] [--steps N]
    [--set [MEMBER:]KEY=VALUE ...] [--score | --no-score] [--likeness-args '--workers 2'] [--runs runs]
    [--out weights/default]

Fits each member, then writes OUT/model.pt (the members' mean as one network, <= 20 MB), OUT/model.json (its
metadata), OUT/MODEL_CARD.md, and with --score OUT/likeness.json and .md (the likeness benchmark with the model as row
`default`).
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from studies.pretrained.pretrained import (
    MEMBERS,
    REPO,
    export,
    exported_network,
    fit,
    fit_command,
    member_metadata,
    metadata,
    model_card,
    score,
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m studies.pretrained", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--members", nargs="+", default=list(MEMBERS), choices=MEMBERS, help="the readers the model averages"
    )
    parser.add_argument(
        "--budget-minutes", type=float, default=60.0, help="fitting time of each member (trainer.max_time)"
    )
    parser.add_argument("--steps", type=int, help="also stop after this many optimizer steps (trainer.max_steps)")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="[MEMBER:]KEY=VALUE",
        help="any LightningCLI setting, for every member or MEMBER's fit alone, e.g. trainer.devices=2, "
        "face-features:model.init_args.net.init_args.hidden=128",
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
        parser.error(f"--set takes [MEMBER:]KEY=VALUE, got {bad}")
    if len(set(args.members)) != len(args.members):
        parser.error(f"--members names one twice: {args.members}")
    if args.out.exists() and not args.out.is_dir():
        parser.error(f"--out {args.out}: is a file, not a folder")
    return args


def main(argv: list[str] | None = None) -> dict:
    """Fit every member, export their mean, optionally score it, write the card; returns the export's metadata."""
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    runs = args.runs.resolve()
    members = []
    for member in args.members:
        command = fit_command(member, runs, args.budget_minutes, args.steps, args.set)
        checkpoint, seconds = fit(command, runs, member)
        members.append(member_metadata(member, checkpoint, command, seconds, args.budget_minutes))
    meta = metadata(shlex.join(["python", "-m", "studies.pretrained", *argv]), members)
    model, meta = export(exported_network(members), args.out, meta)
    print(f"wrote {model} ({model.stat().st_size / 2**20:.2f} MB) from {', '.join(m['checkpoint'] for m in members)}")
    report = score(model, args.out, shlex.split(args.likeness_args)) if args.score else None
    card = args.out / "MODEL_CARD.md"
    card.write_text(model_card(meta, model, report))
    print(f"wrote {card}")
    return meta


if __name__ == "__main__":
    main()
