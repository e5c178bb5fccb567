"""Face verification with regressed game parameters as the face descriptor (paper Tables 3 and 6).

    python eval/verify.py --bench lfw cfp_ff cfp_fp agedb synthetic --ckpt RUN.ckpt --root DIR \
        [--root-lfw DIR|lfw.bin ...] [--landmarks-lfw FILE | --detect] [--mask upper] [--out runs/eval/NAME]

Rows are descriptors (each model file: a regression or reader checkpoint or an exported model; without --ckpt the
shipped default model weights/default/model.pt as row `default`; and the face-ID embedding as the upper bound), the
columns the benchmarks, their mean (over the paper's four among those run; the synthetic set only when alone), the
descriptor's images/s measured in this run (forward passes only) and, for rows that regress game parameters,
the likeness of what the player gets: F_id cosine between each photo and the ENGINE's render of its parameters,
and the imitator-vs-engine PSNR on them (eval/likeness.py), over --likeness-images evenly spread images per
benchmark. `--baseline fastf2p=TRANSLATOR.ckpt` / `f2p=IMITATOR.ckpt` add the baselines' rows (eval/baselines).
Writes results.json and results.md. The library behind it: eval/descriptors.py, eval/evaluate.py,
eval/recovery.py, eval/report.py, eval/benchmarks/.
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as `python eval/verify.py`: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse
import datetime
import json
import logging

import torch

from eval import benchmarks as B
from eval import descriptors as D
from eval.descriptors import build_baselines, build_descriptors, load_imitator
from eval.evaluate import add_rows, evaluate
from eval.preflight import file_problem, folder_problem, refuse
from eval.protocol import MASKS
from eval.recovery import VISIBILITY_FILE, read_visibility
from eval.report import PAPER, PROTOCOL, markdown

REPO = Path(__file__).resolve().parents[1]
PROG = "python eval/verify.py"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n")[0])
    parser.add_argument("--bench", nargs="+", default=["lfw", "cfp_ff", "cfp_fp", "agedb"], choices=B.BENCHMARKS)
    parser.add_argument(
        "--ckpt",
        action="append",
        default=[],
        metavar="[NAME=]PATH",
        help="a model file (regression or reader checkpoint, or an exported model .pt); repeat for ablations (first "
        "unnamed one is 'ours'); default: the shipped default model weights/default/model.pt as row 'default' "
        "(made by `make pretrained`); 'none': no model row (baselines, face-ID only)",
    )
    parser.add_argument(
        "--root",
        default="data/benchmarks",
        help="folder holding the benchmarks under their "
        "distributed names (lfw/, cfp-dataset/, agedb_30.bin, *.bin, synthetic/)",
    )
    for name in B.BENCHMARKS:
        flag = name.replace("_", "-")
        parser.add_argument(f"--root-{flag}", help=f"{name}: its folder or .bin file (overrides --root)")
        if name in ("lfw", "cfp_ff", "cfp_fp"):
            parser.add_argument(f"--landmarks-{flag}", help=f"{name}: 'path x1 y1 ... x5 y5' lines (template order)")
    parser.add_argument(
        "--detect",
        action="store_true",
        help="LFW/CFP without --landmarks-*: detect the five "
        "points (eval.align) and write OUT/landmarks-<bench>.txt for reuse; slow on a CPU",
    )
    parser.add_argument("--size", type=int, default=256, help="aligned image size (the paper's 256)")
    parser.add_argument("--mask", choices=MASKS, help="Table 6 occlusion of the upper/middle/lower face")
    parser.add_argument("--face-id", default="dlib", help="face-ID extractor for the upper-bound row, or 'none'")
    parser.add_argument("--face-id-checkpoint", help="weights for --face-id (e.g. the LightCNN-29 v2 .pth.tar)")
    parser.add_argument(
        "--likeness-images",
        type=int,
        default=200,
        help="images per benchmark, evenly spread, "
        "on which to measure the likeness of the engine's render of the regressed parameters "
        "(about 10-15 ms each on a CPU); 0 switches it off",
    )
    parser.add_argument(
        "--imitator",
        help="imitator checkpoint (file or run folder) for the imitator-vs-engine "
        "PSNR (default: the one the first --ckpt was trained through, from its frozen_sources)",
    )
    parser.add_argument(
        "--baseline",
        action="append",
        default=[],
        metavar="KIND=PATH",
        help="a baseline row, repeatable: fastf2p=TRANSLATOR.ckpt (from `python -m eval.baselines.fastf2p`) or "
        "f2p=IMITATOR.ckpt (400 optimisation steps per photo: see --f2p-pairs)",
    )
    parser.add_argument("--f2p-steps", type=int, default=400, help="F2P's optimisation steps (the published 400)")
    parser.add_argument(
        "--f2p-pairs",
        type=int,
        help="score the f2p row on only about this many pairs per benchmark (seconds per photo on a CPU)",
    )
    parser.add_argument("--max-pairs", type=int, help="at most about this many pairs per benchmark (quick runs)")
    parser.add_argument("--synthetic-pairs", type=int, default=6000, help="pairs drawn from the synthetic set")
    parser.add_argument("--seed", type=int, default=0, help="seed of the synthetic pairs")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--visibility", default=str(VISIBILITY_FILE), help="per-parameter sensitivity table")
    parser.add_argument("--out", help="output folder (default runs/eval/<date-time>)")
    return parser.parse_args(argv)


def check_arguments(args: argparse.Namespace, out: Path) -> dict[str, Path]:
    """Every file argument and number checked before a model or benchmark loads; {benchmark: its path}.

    A problem stops the command with one line naming the argument, the file and what is wrong.
    """
    for flag in ("size", "batch_size", "synthetic_pairs", "max_pairs", "f2p_pairs", "f2p_steps"):
        value = getattr(args, flag)
        if value is not None and value < 1:
            refuse(PROG, f"--{flag.replace('_', '-')} must be at least 1, got {value}")
    if args.likeness_images < 0:
        refuse(PROG, f"--likeness-images must be 0 or more, got {args.likeness_images}")
    # No --ckpt: the default model (below, once the other arguments are checked); --ckpt none: no model row.
    args.ckpt = [spec for spec in args.ckpt if spec.lower() != "none"] if args.ckpt else None
    for spec in args.ckpt or []:
        if problem := file_problem(spec.split("=", 1)[-1], "checkpoint file"):
            refuse(PROG, f"--ckpt {spec}: {problem}")
    for spec in args.baseline:
        kind, equals, path = spec.partition("=")
        if not (kind and equals and path):
            refuse(PROG, f"--baseline {spec!r}: expected KIND=PATH, e.g. fastf2p=runs/demo/fastf2p.ckpt")
        if not Path(path).exists():
            refuse(PROG, f"--baseline {spec}: {path} not found")
    for flag in ("imitator", "face_id_checkpoint"):
        if getattr(args, flag) and not Path(getattr(args, flag)).exists():
            refuse(PROG, f"--{flag.replace('_', '-')} {getattr(args, flag)} not found")
    if args.ckpt is None:  # no --ckpt: the shipped default model; one line saying how to make it when it is not there
        try:
            args.ckpt = [f"default={D.default_model()}"]
        except FileNotFoundError as error:
            refuse(PROG, str(error))
    paths = {}
    for name in args.bench:
        flag = name.replace("_", "-")
        landmarks = getattr(args, f"landmarks_{name}", None)
        if landmarks and (problem := file_problem(landmarks, "landmarks file")):
            refuse(PROG, f"--landmarks-{flag} {problem}")
        given = getattr(args, f"root_{name}")
        if given and not Path(given).exists():
            refuse(PROG, f"--root-{flag} {given} not found")
        try:
            paths[name] = Path(given) if given else B.locate(name, args.root)
        except B.MissingBenchmarkFile as error:
            refuse(PROG, str(error))
    if problem := folder_problem(out):
        refuse(PROG, f"--out {out}: {problem}")
    return paths


def main(argv: list[str] | None = None) -> dict:
    """Run the CLI; returns the report that it writes as results.json and results.md.

    Arguments are checked first (check_arguments); a benchmark file that does not read as its format stops it with
    one line naming the file and its line or image index.
    """
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    args = parse_args(argv)
    created = datetime.datetime.now().isoformat(timespec="seconds")
    out = Path(args.out or REPO / "runs" / "eval" / created.replace(":", ""))
    paths = check_arguments(args, out)
    try:
        return run(args, argv, paths, out, created)
    except (B.MissingBenchmarkFile, B.BenchmarkFileError) as error:
        refuse(PROG, str(error))


def run(args: argparse.Namespace, argv: list[str] | None, paths: dict[str, Path], out: Path, created: str) -> dict:
    """The evaluation of main, once its arguments are checked: benchmarks, descriptors, the report and its files."""
    benches = {}
    for name in args.bench:
        path = paths[name]
        landmarks = getattr(args, f"landmarks_{name}", None)
        bench = B.load(name, path, args.size, landmarks, args.synthetic_pairs, args.seed)
        if args.max_pairs:
            bench = B.limit_pairs(bench, args.max_pairs)
        if args.detect and name in ("lfw", "cfp_ff", "cfp_fp") and not landmarks and Path(path).suffix != ".bin":
            detected = B.detect_landmarks(bench, out / f"landmarks-{name}.txt")
            bench = B.load(name, path, args.size, detected, args.synthetic_pairs, args.seed)
            bench = B.limit_pairs(bench, args.max_pairs) if args.max_pairs else bench
        benches[name] = bench
    face_id = None if args.face_id.lower() == "none" else args.face_id
    try:  # a missing, unreadable or refused checkpoint: one line naming the file, exit status 1
        descriptors, skipped = build_descriptors(args.ckpt, face_id, args.face_id_checkpoint, args.device)
        baselines = build_baselines(
            args.baseline, face_id or "dlib", args.face_id_checkpoint, args.device, args.f2p_steps
        )
        imitator = load_imitator(args.imitator, args.ckpt) if args.likeness_images > 0 and face_id else (None, "")
    except (OSError, KeyError, ValueError) as error:
        refuse(PROG, error.args[0] if isinstance(error, KeyError) else str(error))
    subset = [b for b in baselines if b.name == "f2p"] if args.f2p_pairs else []
    descriptors += [b for b in baselines if b not in subset]
    if not descriptors:
        refuse(PROG, "no descriptor to evaluate: give --ckpt and/or a loadable --face-id")
    report = {
        "kind": "likeness.verification",
        "version": 1,
        "created": created,
        "argv": sys.argv[1:] if argv is None else argv,
        "device": args.device,
        "image_size": args.size,
        "mask": args.mask,
        "protocol": PROTOCOL,
        "checkpoints": args.ckpt,
        "face_id": face_id,
        "skipped": skipped,
        "benchmarks": {n: b.summary() for n, b in benches.items()},
        "paper": PAPER[args.mask],
    }
    visibility = read_visibility(args.visibility) if "synthetic" in benches else None
    report |= evaluate(benches, descriptors, args.batch_size, args.mask, visibility, args.likeness_images, imitator)
    if subset:  # F2P on fewer pairs, with F_id again so that its likeness is measured too
        face_ids = [d for d in descriptors if not d.is_parameters]
        settings = (args.batch_size, args.mask, visibility, args.likeness_images, imitator)
        add_rows(report, benches, subset + face_ids, args.f2p_pairs, *settings)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(report, indent=2) + "\n")
    (out / "results.md").write_text(markdown(report))
    print(markdown(report))
    print(f"\nwrote {out / 'results.json'} and {out / 'results.md'}")
    return report


if __name__ == "__main__":
    main()
