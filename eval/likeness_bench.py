"""The likeness benchmark's scores: per method (photos -> 267 parameters), the truth and the neutral face, how close
the parameters are (RMSE against the neutral face's), how alike the ENGINE's character looks to the photo by a
recogniser, a ten-person lineup, and face verification with the parameters as the descriptor; F_id's own
verification beside them. The benchmark is eval/benchmarks/held_out.py; `python -m bench.likeness` runs it.

Intervals are 95% percentile bootstraps over people (a person's photos resampled together).
"""

from __future__ import annotations

import argparse
import datetime
import json
import logging
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from eval.benchmarks import held_out
from eval.benchmarks.held_out import LikenessBenchmark
from eval.evaluate import benchmark_images
from eval.lineup import lineup_credit, unit
from eval.protocol import verify
from eval.recovery import VISIBILITY_FILE, ratio_interval, read_visibility

log = logging.getLogger(__name__)
ROW_KEYS = (
    "visible_rmse_ratio",
    "all_rmse_ratio",
    "all_rmse_ratio_interval",
    "likeness",
    "likeness_gap_closed",
    "lineup_top1",
    "verification",
)
METHOD_ROWS = ("default", "paper", "fastf2p")  # in this order, then truth, neutral, face_id
# FIXED visible set: sliders that move a 256 px screenshot by >= 0.1 grey levels per unit in the committed table.
VISIBLE_GREY_LEVELS = 0.1
# Recognisers some training objective uses as F_id: as judges they are not held out (a method trained through one
# can look alike to it without looking alike).
TRAINING_RECOGNISERS = ("dlib", "lightcnn29v2")
HELD_OUT_RECOGNISER = "faceres"
Method = Callable[[torch.Tensor], torch.Tensor]  # aligned photos (B, 3, S, S) in [0, 1] -> (B, 267)
Renderer = Callable[[np.ndarray, int], torch.Tensor]  # (N, 267), size -> (N, 3, S, S) in [0, 1]


def visible_set(path=VISIBILITY_FILE, threshold: float = VISIBLE_GREY_LEVELS) -> np.ndarray:
    """Indices of the parameters that move a 256 px screenshot by >= `threshold` grey levels per unit."""
    visibility = read_visibility(path)
    if visibility is None:
        raise FileNotFoundError(f"{path}: the sensitivity table is needed for the visible set")
    return np.flatnonzero(visibility >= threshold)


def load_recogniser(name: str | None = None, checkpoint: str | None = None) -> tuple[torch.nn.Module, dict]:
    """(recogniser, {"recogniser", "held_out", "caveat"}): `name`, or the held-out one when it loads, else dlib."""
    from models.face_id import build_face_id

    caveat = None
    if name is None:
        try:
            return build_face_id(HELD_OUT_RECOGNISER, checkpoint), {
                "recogniser": HELD_OUT_RECOGNISER,
                "held_out": True,
                "caveat": None,
            }
        except (OSError, ValueError) as error:
            name, checkpoint = "dlib", None
            caveat = f"{HELD_OUT_RECOGNISER!r} did not load ({str(error).split(';')[0]}); fell back to dlib. "
            log.warning(caveat)
    held_out = name not in TRAINING_RECOGNISERS
    if not held_out:
        caveat = (caveat or "") + (
            f"{name} is an F_id some training objective uses, so likeness and lineup by it are not held out: a "
            f"method trained through it can score alike without looking alike."
        )
    return build_face_id(name, checkpoint), {"recogniser": name, "held_out": held_out, "caveat": caveat}


@torch.inference_mode()
def read_photos(
    held: LikenessBenchmark, methods: dict[str, Method], recogniser: Method, batch_size: int = 32
) -> tuple[dict[str, np.ndarray], np.ndarray, dict[str, float]]:
    """Every method's parameters (N, 267) and the recogniser's embeddings (N, D) of every photo, and seconds each."""
    bench = held.bench
    outputs: dict[str, list] = {name: [] for name in [*methods, "face_id"]}
    seconds = dict.fromkeys(outputs, 0.0)
    for start in range(0, bench.num_images, batch_size):
        photos = benchmark_images(bench, range(start, min(start + batch_size, bench.num_images)))
        for name, method in [*methods.items(), ("face_id", recogniser)]:
            began = time.perf_counter()
            outputs[name].append(method(photos).float().cpu().numpy())
            seconds[name] += time.perf_counter() - began
    arrays = {name: np.concatenate(chunks) for name, chunks in outputs.items()}
    embeddings = arrays.pop("face_id")
    return arrays, embeddings, seconds


@torch.inference_mode()
def character_embeddings(
    parameters: np.ndarray, recogniser: Method, render: Renderer, size: int, batch_size: int = 32
) -> np.ndarray:
    """The recogniser's embeddings (N, D) of the engine's renders of parameter rows (N, 267); equal rows once."""
    unique, inverse = np.unique(np.asarray(parameters, np.float32), axis=0, return_inverse=True)
    chunks = [
        recogniser(render(unique[start : start + batch_size], size)).float().cpu().numpy()
        for start in range(0, len(unique), batch_size)
    ]
    return np.concatenate(chunks)[inverse.reshape(-1)]


def bootstrap(statistic: Callable[..., np.ndarray], *per_person: np.ndarray, resamples: int = 2000) -> list[float]:
    """95% percentile interval of statistic(*per_person resampled), people drawn with replacement (seeded)."""
    count = len(per_person[0])
    draws = np.random.default_rng(0).integers(0, count, (resamples, count))
    values = statistic(*(x[draws] for x in per_person))  # each (resamples, count)
    low, high = np.nanpercentile(values, [2.5, 97.5])
    return [float(low), float(high)]


def gap_closed(row: np.ndarray, neutral: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """(row - neutral) / (truth - neutral) of mean likenesses over the last axis: 0 the neutral face, 1 the truth."""
    span = truth.mean(-1) - neutral.mean(-1)
    return np.divide(row.mean(-1) - neutral.mean(-1), span, out=np.full(np.shape(span), np.nan), where=span != 0)


def verification(descriptors: np.ndarray, held: LikenessBenchmark) -> dict:
    """The paper's protocol on the pairs with `descriptors` (N, D) per photo; a constant descriptor is chance."""
    bench = held.bench
    if np.ptp(descriptors) == 0:  # every photo the same descriptor (the neutral face): no information
        folds = len(np.unique(bench.folds))
        return {"accuracy": 0.5, "std": 0.0, "fold_accuracy": [0.5] * folds, "note": "constant descriptor: chance"}
    pairs = bench.pairs
    return verify(descriptors[pairs[:, 0]], descriptors[pairs[:, 1]], bench.is_same, bench.folds).as_dict()


def score(
    held: LikenessBenchmark,
    methods: dict[str, Method],
    recogniser: Method,
    render: Renderer | None = None,
    visible: np.ndarray | None = None,
    batch_size: int = 32,
    resamples: int = 2000,
) -> dict:
    """{"rows": {name: ROW_KEYS}, "intervals": ..., "verification_folds": ..., "seconds": ...} for each method,
    the truth, the neutral face, and F_id's own verification (row "face_id")."""
    if render is None:
        from game.engine import engine_renders as render
    bench = held.bench
    truth = np.asarray(bench.parameters, np.float64)
    visible = visible_set() if visible is None else np.asarray(visible)
    began = time.perf_counter()
    parameters, embeddings, seconds = read_photos(held, methods, recogniser, batch_size)
    parameters |= {"truth": truth, "neutral": np.zeros_like(truth)}
    own = held.lineups[:, 0]  # the lineup photos: one per person
    position = np.full(bench.num_images, -1)
    position[own] = np.arange(len(own))
    lineups = position[held.lineups]  # the same lineups, as rows of the lineup photos
    photo = unit(embeddings[own])
    cosines, characters = {}, {}
    for name, rows in parameters.items():
        began_row = time.perf_counter()
        characters[name] = character_embeddings(rows[own], recogniser, render, bench.size, batch_size)
        cosines[name] = (photo * unit(characters[name])).sum(1)  # per person: photo vs their character
        seconds[f"{name}_characters"] = time.perf_counter() - began_row
    report: dict = {"rows": {}, "intervals": {}, "verification_folds": {}}
    for name, rows in parameters.items():
        squared, zero = (rows - truth) ** 2, truth**2
        everything = ratio_interval(squared, zero, bench.identities, resamples=resamples)
        seen = ratio_interval(squared[:, visible], zero[:, visible], bench.identities, resamples=resamples)
        credit = lineup_credit(photo, characters[name], lineups)
        verified = verification(rows, held)
        row_truth, row_neutral = cosines["truth"], cosines["neutral"]
        report["rows"][name] = {
            "visible_rmse_ratio": seen["ratio"],
            "all_rmse_ratio": everything["ratio"],
            "all_rmse_ratio_interval": everything["interval"],
            "likeness": float(cosines[name].mean()),
            "likeness_gap_closed": float(gap_closed(cosines[name], row_neutral, row_truth)),
            "lineup_top1": float(credit.mean()),
            "verification": verified["accuracy"],
        }
        report["intervals"][name] = {
            "visible_rmse_ratio": seen["interval"],
            "all_rmse_ratio": everything["interval"],
            "likeness": bootstrap(lambda c: c.mean(-1), cosines[name], resamples=resamples),
            "likeness_gap_closed": bootstrap(gap_closed, cosines[name], row_neutral, row_truth, resamples=resamples),
            "lineup_top1": bootstrap(lambda c: c.mean(-1), credit, resamples=resamples),
            "verification_std_over_folds": verified["std"],
        }
        report["verification_folds"][name] = verified["fold_accuracy"]
    own_verification = verification(embeddings, held)
    report["rows"]["face_id"] = dict.fromkeys(ROW_KEYS) | {"verification": own_verification["accuracy"]}
    report["intervals"]["face_id"] = {"verification_std_over_folds": own_verification["std"]}
    report["verification_folds"]["face_id"] = own_verification["fold_accuracy"]
    report["seconds"] = {name: round(s, 2) for name, s in seconds.items()} | {
        "total": round(time.perf_counter() - began, 1)
    }
    return report


def _cell(value, interval=None, digits: int = 4) -> str:
    if value is None:
        return "-"
    text = f"{value:.{digits}f}"
    return f"{text} ({interval[0]:.{digits}f}-{interval[1]:.{digits}f})" if interval else text


def markdown(report: dict, title: str = "Likeness benchmark") -> str:
    """The rows as a Markdown table with their intervals, and what was measured how."""
    b = report["benchmark"]
    lines = [
        f"# {title}",
        "",
        f"{b['identities']} held-out people x {b['photos_per_identity']} synthetic photos at {b['size']} px "
        f"(seed {b['seed']}, prior {b['prior']}, extras {b['extras']}); verification on {b['pairs']} pairs "
        f"({b['folds']} folds x {b['pairs_per_fold']}, half same, each fold its own people); likeness and lineup "
        f"on {b['lineup_photos']} photos (one per person). Recogniser: {report['recogniser']} "
        f"({'held out' if report['held_out'] else 'NOT held out'}).",
        "",
        "| row | visible RMSE / neutral's | all RMSE / neutral's | likeness (cosine) | likeness gap closed "
        "| lineup top-1 (chance 0.10) | verification |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, row in report["rows"].items():
        i = report["intervals"].get(name, {})
        cells = [
            _cell(row["visible_rmse_ratio"], i.get("visible_rmse_ratio")),
            _cell(row["all_rmse_ratio"], row["all_rmse_ratio_interval"]),
            _cell(row["likeness"], i.get("likeness"), 3),
            _cell(row["likeness_gap_closed"], i.get("likeness_gap_closed"), 3),
            _cell(row["lineup_top1"], i.get("lineup_top1"), 3),
            _cell(row["verification"], None) + (f" ± {i['verification_std_over_folds']:.4f}" if i else ""),
        ]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += ["", "Intervals: 95% bootstrap over people; verification: mean ± std over the 10 folds."]
    lines += [f"- {note}" for note in report.get("notes", [])]
    return "\n".join(lines) + "\n"


def add_study_arguments(parser: argparse.ArgumentParser, runs: Path) -> None:
    """A training study's shared options: --set (LightningCLI settings), --runs, and the benchmark's --root,
    --identities, --pairs-per-fold and --resamples."""
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="any LightningCLI setting")
    parser.add_argument("--runs", type=Path, default=runs)
    parser.add_argument("--root", default=held_out.ROOT, help="the likeness benchmark's folder")
    parser.add_argument("--identities", type=int, default=1000)
    parser.add_argument("--pairs-per-fold", type=int, default=600)
    parser.add_argument("--resamples", type=int, default=2000)


def check_study_arguments(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """parser.error (exit 2, before any work) on a --set without KEY=VALUE or a benchmark shape that cannot be."""
    if bad := [setting for setting in args.set if "=" not in setting or setting.startswith("=")]:
        parser.error(f"--set takes KEY=VALUE, got {bad}")
    try:
        held_out.check_shape(args.identities, 4, args.pairs_per_fold, 10)
    except ValueError as error:
        parser.error(f"--identities {args.identities}: {error}")


def study_report(held: LikenessBenchmark, methods: dict[str, Method], kind: str, argv, resamples: int = 2000) -> dict:
    """A study's report on the benchmark: its kind and arguments (the command line's when `argv` is None), the
    held-out recogniser, the benchmark's shape, the visible set's size, and score()'s rows for `methods`, the truth
    and the neutral face; the study adds its own notes before the report's."""
    recogniser, judge = load_recogniser()
    visible = visible_set()
    scored = score(held, methods, recogniser.eval(), visible=visible, resamples=resamples)
    return {
        "kind": kind,
        "created": datetime.datetime.now().isoformat(timespec="seconds"),
        "argv": sys.argv[1:] if argv is None else list(argv),
        "recogniser": judge["recogniser"],
        "held_out": judge["held_out"],
        "benchmark": held.summary(),
        "visible": len(visible),
        **scored,
        "notes": [f"Visible set: {len(visible)} sliders; intervals: 95% bootstrap over people."],
    }


def write_report(report: dict, out: Path, name: str, title: str) -> None:
    """OUT/NAME.json (the whole report) and OUT/TABLE.md (markdown() under `title`)."""
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{name}.json").write_text(json.dumps(report, indent=2) + "\n")
    (out / "TABLE.md").write_text(markdown(report, title))
