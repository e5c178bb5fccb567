"""The likeness benchmark: which method makes characters that look like the person (eval/likeness_bench.py).

    python -m bench.likeness [--ckpt paper=RUN.ckpt] [--ckpt default=MODEL.ckpt] [--baseline fastf2p=TRANSLATOR.ckpt] \
        [--recogniser faceres|dlib] [--workers 2] [--out bench/results/likeness.json]

Renders the held-out benchmark on first use (eval/benchmarks/held_out.py: 1,000 people x 4 photos at 256 px into
data/benchmarks/likeness-256, reused afterwards) and writes the JSON and a Markdown table beside it (.md). Rows: each
model file (a regression or reader checkpoint, or an export such as the shipped default model: `--ckpt
default=weights/default/model.pt`, made and scored by `make pretrained`), the baselines, the truth, the neutral face,
and F_id's own verification (row face_id). A method row whose file is not given is left out with a note.
"""

from __future__ import annotations

import argparse
import datetime
import json
import logging
import sys
from pathlib import Path

import torch

from eval.benchmarks import held_out
from eval.descriptors import build_baselines, build_descriptors
from eval.likeness_bench import (
    HELD_OUT_RECOGNISER,
    METHOD_ROWS,
    VISIBLE_GREY_LEVELS,
    load_recogniser,
    markdown,
    score,
    visible_set,
)
from eval.lineup import TIE
from eval.preflight import file_problem, folder_problem, refuse

PROG = "python -m bench.likeness"
FLAG = {"fastf2p": "--baseline"}  # the other rows are regression checkpoints (--ckpt)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog=PROG, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--ckpt", action="append", default=[], metavar="NAME=PATH", help="model file row (checkpoint or export)"
    )
    parser.add_argument("--baseline", action="append", default=[], metavar="KIND=PATH", help="e.g. fastf2p=T.ckpt")
    parser.add_argument(
        "--recogniser", help=f"judge of likeness (default {HELD_OUT_RECOGNISER}, else dlib with a caveat)"
    )
    parser.add_argument("--recogniser-checkpoint", help="weights for --recogniser, where it needs them")
    parser.add_argument("--root", default=held_out.ROOT, help="where the benchmark is rendered once and reused")
    parser.add_argument("--identities", type=int, default=1000)
    parser.add_argument("--photos-per-identity", type=int, default=4)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--pairs-per-fold", type=int, default=600)
    parser.add_argument("--lineup-size", type=int, default=10)
    parser.add_argument("--workers", type=int, help="render processes (default: every core)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--resamples", type=int, default=2000, help="bootstrap resamples")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--out", default="bench/results/likeness.json")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> dict:
    """Check the arguments, build the benchmark, score every row, write JSON and Markdown; returns the report."""
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    args = parse_args(argv)
    for spec in args.ckpt + args.baseline:
        name, equals, path = spec.partition("=")
        if not (name and equals and path):
            refuse(PROG, f"{spec!r}: expected NAME=PATH, e.g. paper=runs/demo-main/version_0/checkpoints/last.ckpt")
        if problem := file_problem(path, "checkpoint file"):
            refuse(PROG, f"{spec}: {problem}")
    for flag in ("identities", "photos_per_identity", "size", "pairs_per_fold", "lineup_size", "batch_size"):
        if getattr(args, flag) < 1:
            refuse(PROG, f"--{flag.replace('_', '-')} must be at least 1, got {getattr(args, flag)}")
    try:
        held_out.check_shape(args.identities, args.photos_per_identity, args.pairs_per_fold, args.lineup_size)
    except ValueError as error:
        refuse(PROG, f"--identities {args.identities} --photos-per-identity {args.photos_per_identity}: {error}")
    out = Path(args.out)
    if problem := folder_problem(out.parent):
        refuse(PROG, f"--out {out}: {problem}")
    try:
        methods, _ = build_descriptors(args.ckpt, None, None, args.device)
        methods += build_baselines(args.baseline, "dlib", None, args.device)
        recogniser, judge = load_recogniser(args.recogniser, args.recogniser_checkpoint)
    except (OSError, KeyError, ValueError) as error:
        refuse(PROG, error.args[0] if isinstance(error, KeyError) else str(error))
    recogniser = recogniser.to(args.device).eval()
    held = held_out.build(
        args.root,
        args.identities,
        args.photos_per_identity,
        args.size,
        args.pairs_per_fold,
        args.lineup_size,
        workers=args.workers,
    )
    known = [m for name in METHOD_ROWS for m in methods if m.name == name]
    ordered = {m.name: m for m in known + [m for m in methods if m not in known]}
    visible = visible_set()
    scored = score(held, ordered, recogniser, visible=visible, batch_size=args.batch_size, resamples=args.resamples)
    notes = [
        f"{name}: no checkpoint given ({FLAG.get(name, '--ckpt')} {name}=PATH), row left out"
        for name in METHOD_ROWS
        if name not in ordered
    ]
    notes += [
        f"Visible set: the {len(visible)} sliders that move a 256 px screenshot by >= {VISIBLE_GREY_LEVELS} grey "
        f"levels per unit in game/data/sensitivity.csv.",
        f"Lineup: the photo's own character against those of {args.lineup_size - 1} other people's photos (seeded); "
        f"ties within {TIE:g} in cosine are shared (1/k each, a uniform random tie-break's expectation), so the "
        f"neutral face scores chance.",
        "likeness_gap_closed = (row - neutral) / (truth - neutral) of the mean likeness.",
        "face_id: the recogniser's own embedding, verification only.",
    ]
    if judge["caveat"]:
        notes.append(f"Caveat: {judge['caveat']}")
    report = {
        "kind": "likeness.benchmark",
        "version": 1,
        "created": datetime.datetime.now().isoformat(timespec="seconds"),
        "argv": sys.argv[1:] if argv is None else argv,
        "device": args.device,
        "recogniser": judge["recogniser"],
        "held_out": judge["held_out"],
        "recogniser_caveat": judge["caveat"],
        "benchmark": held.summary(),
        "visible": {"threshold_grey_levels": VISIBLE_GREY_LEVELS, "count": len(visible)},
        "checkpoints": {spec.partition("=")[0]: spec.partition("=")[2] for spec in args.ckpt + args.baseline},
        "notes": notes,
        **scored,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    out.with_suffix(".md").write_text(markdown(report))
    print(markdown(report))
    print(f"wrote {out} and {out.with_suffix('.md')}")
    return report


if __name__ == "__main__":
    main()
