"""Face verification with regressed game parameters as the face descriptor (paper Tables 3 and 6).

    python eval/verify.py --bench lfw cfp_ff cfp_fp agedb synthetic --ckpt RUN.ckpt --root DIR \
        [--root-lfw DIR|lfw.bin ...] [--landmarks-lfw FILE | --detect] [--mask upper] [--out runs/eval/NAME]

Rows are descriptors (each regression checkpoint, and the face-ID embedding as the upper bound), columns the
benchmarks, their mean (over the paper's four among those run; the synthetic set only when alone), the
descriptor's images/s measured in this run (forward passes only) and, for rows that regress game parameters,
the likeness of what the player gets: F_id cosine between each photo and the ENGINE's render of its parameters,
and the imitator-vs-engine PSNR on them (eval/likeness.py), over --likeness-images evenly spread images per
benchmark. Writes results.json and results.md.
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as `python eval/verify.py`: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse
import csv
import datetime
import json
import logging
import time

import numpy as np
import torch
import torch.nn.functional as F

from eval import benchmarks as B
from eval.likeness import player_likeness
from eval.protocol import MASKS, apply_mask, verify
from game import parameters as P

log = logging.getLogger("eval.verify")
REPO = Path(__file__).resolve().parents[1]
VISIBILITY_FILE = REPO / "bench" / "results" / "sensitivity.csv"
# A parameter is "visible" when one unit of it changes a 256 px screenshot by at least one grey level on average
# (the sensitivity table's unit). Only a handful are (skin tone, head width and length, hair colour): most of
# the 267 move the picture by hundredths of a level, so no image-based method can recover them, and an RMSE
# over all of them mostly measures how close to the prior's mean they stay.
VISIBLE_GREY_LEVELS = 1.0
COLUMNS = {"lfw": "LFW", "cfp_ff": "CFP_FF", "cfp_fp": "CFP_FP", "agedb": "AgeDB", "synthetic": "synthetic"}
# The paper's numbers for reference (Table 3; Table 6 for the masks).
PAPER = {
    None: {
        "Ours": [0.9480, 0.9434, 0.8317, 0.8702, 0.8983],
        "LightCNN-29v2 (upper bound)": [0.9958, 0.9940, 0.9494, 0.9597, 0.9747],
    },
    "upper": {"Ours, upper face masked": [0.9080, 0.9114, 0.7563, 0.8135, 0.8473]},
    "middle": {"Ours, middle face masked": [0.9050, 0.9139, 0.7441, 0.8178, 0.8452]},
    "lower": {"Ours, lower face masked": [0.9120, 0.9196, 0.7537, 0.8423, 0.8569]},
}


def _resize(images: torch.Tensor, size: int | None) -> torch.Tensor:
    if size is None or images.shape[-1] == size:
        return images
    return F.interpolate(images, size=(size, size), mode="bilinear", antialias=True, align_corners=False)


class ParameterDescriptor:
    """Regressed game parameters p = R(E(x).features).parameters: images (B, 3, S, S) in [0, 1] -> (B, 267)."""

    is_parameters = True

    def __init__(self, name: str, encoder: torch.nn.Module, regressor: torch.nn.Module, device: str = "cpu"):
        self.name, self.device = name, device
        self.encoder, self.regressor = encoder.to(device).eval(), regressor.to(device).eval()
        self.image_size = getattr(encoder, "image_size", None)

    @torch.inference_mode()
    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        x = _resize(images.to(self.device), self.image_size)
        return self.regressor(self.encoder(x).features).parameters


class FaceIdDescriptor:
    """The face-ID embedding F_id itself (the paper's LightCNN row, an upper bound): (B, 3, S, S) -> (B, D)."""

    is_parameters = False

    def __init__(self, name: str, extractor: torch.nn.Module, device: str = "cpu"):
        self.name, self.device, self.extractor = name, device, extractor.to(device).eval()

    @torch.inference_mode()
    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        return self.extractor(images.to(self.device))


def load_regression(path: str | Path) -> tuple[torch.nn.Module, torch.nn.Module]:
    """(encoder, regressor) of a regression checkpoint; the one place to adapt if its format changes."""
    from lightning_modules.checkpoints import load_network

    try:
        return load_network(path, "encoder"), load_network(path, "regressor")
    except KeyError:  # no network specs under those keys: rebuild the whole LightningModule instead
        from lightning_modules.regression import RegressionModule

        module = RegressionModule.load_from_checkpoint(path, map_location="cpu")
        return module.encoder.eval(), module.regressor.eval()


def load_imitator(path: str | None, checkpoints: list[str]) -> tuple[torch.nn.Module | None, str]:
    """The imitator for the imitator-vs-engine gap: `path`, else the one the first regression checkpoint that
    names one was trained through. (network, where it came from), or (None, why there is none)."""
    from lightning_modules.checkpoints import load_network

    if path:
        from lightning_modules.regression import find_checkpoint

        return load_network(find_checkpoint(path), "net"), f"{path} (--imitator)"
    missing = []
    for spec in checkpoints:
        checkpoint = spec.split("=", 1)[-1]
        saved = torch.load(checkpoint, map_location="cpu", weights_only=True, mmap=True)
        named = (saved.get("frozen_sources") or {}).get("imitator") or saved.get("hyper_parameters", {}).get(
            "imitator_checkpoint"
        )
        if named:
            from lightning_modules.regression import find_checkpoint  # here: it imports Lightning and the losses

            try:
                file = find_checkpoint(named)
            except FileNotFoundError:
                missing.append(f"{checkpoint} names {named}, which is not here")
                continue
            return load_network(file, "net"), f"{file} (the imitator {checkpoint} was trained through)"
    return None, "; ".join(missing) or "no --imitator, and no --ckpt names the imitator it was trained through"


def build_descriptors(
    checkpoints: list[str], face_id: str | None, face_id_checkpoint: str | None, device: str
) -> tuple[list, dict[str, str]]:
    """Descriptor rows: "NAME=PATH" (or PATH, named "ours" first) checkpoints, then the face-ID row if it loads."""
    rows, skipped = [], {}
    for number, spec in enumerate(checkpoints):
        name, path = spec.split("=", 1) if "=" in spec else ("ours" if number == 0 else Path(spec).stem, spec)
        if name in (row.name for row in rows):
            raise ValueError(f"two checkpoints are named {name!r}; name them with --ckpt NAME=PATH")
        if not Path(path).is_file():
            raise FileNotFoundError(f"checkpoint {path} not found (--ckpt {spec})")
        rows.append(ParameterDescriptor(name, *load_regression(path), device=device))
    if face_id:
        try:
            from models.face_id import build_face_id

            rows.append(FaceIdDescriptor("face_id", build_face_id(face_id, face_id_checkpoint), device))
        except Exception as error:  # the upper-bound row is optional: report why it is missing
            skipped["face_id"] = f"{type(error).__name__}: {error}"
            log.warning("face_id row skipped: %s", skipped["face_id"])
    return rows, skipped


def compute_descriptors(
    bench: B.Benchmark,
    descriptors: list,
    batch_size: int = 64,
    mask: str | None = None,
    seconds: dict[str, float] | None = None,
) -> dict[str, np.ndarray]:
    """Each descriptor over every image of `bench` -> {name: (N, D)}; adds forward time to `seconds[name]`."""
    outputs: dict[str, list] = {d.name: [] for d in descriptors}
    for start in range(0, bench.num_images, batch_size):
        batch = apply_mask(benchmark_images(bench, range(start, min(start + batch_size, bench.num_images))), mask)
        for d in descriptors:
            began = time.perf_counter()
            out = d(batch).float().cpu()  # .cpu() waits for the device, so the time is the whole forward
            if seconds is not None:
                seconds[d.name] = seconds.get(d.name, 0.0) + time.perf_counter() - began
            outputs[d.name].append(out.numpy())
    return {name: np.concatenate(chunks) for name, chunks in outputs.items()}


def benchmark_images(bench: B.Benchmark, indices) -> torch.Tensor:
    """Images `indices` of a benchmark as (N, 3, S, S) float in [0, 1], aligned to the template."""
    return torch.from_numpy(np.stack([bench.image(int(i)) for i in indices])).permute(0, 3, 1, 2).float() / 255


def engine_likeness(
    bench: B.Benchmark, features: dict[str, np.ndarray], descriptors: list, count: int, imitator: torch.nn.Module | None
) -> dict[str, dict]:
    """Per parameter row, player_likeness on `count` evenly spread images of `bench`: {name: scores}."""
    face_id = next(d for d in descriptors if isinstance(d, FaceIdDescriptor))
    rows = np.linspace(0, bench.num_images - 1, min(count, bench.num_images)).astype(int)
    photos = benchmark_images(bench, rows)  # unmasked: likeness to the person, whatever part of the face the method saw
    scores = {}
    for d in descriptors:
        if d.is_parameters:
            scores[d.name] = player_likeness(photos, features[d.name][rows], face_id, imitator)
            del scores[d.name]["per_photo"]  # hundreds of numbers per row and benchmark: results.json stays readable
    return scores


def read_visibility(path: str | Path = VISIBILITY_FILE) -> np.ndarray | None:
    """Per-parameter visibility (mean |image change| per unit) from the sensitivity table, or None if absent."""
    path = Path(path)
    if not path.is_file():
        log.warning("%s not found: recovery is reported without visibility quartiles", path)
        return None
    with path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    if [int(r["index"]) for r in rows] != list(range(P.NUM_PARAMETERS)):
        raise ValueError(f"{path}: expected rows for parameter indices 0..{P.NUM_PARAMETERS - 1}")
    return np.array([float(r["mean_abs_change_per_unit"]) for r in rows])


def ratio_interval(
    squared: np.ndarray,
    zero_squared: np.ndarray,
    clusters: np.ndarray | None,
    confidence: float = 0.95,
    resamples: int = 2000,
) -> dict:
    """RMSE / RMSE of predicting 0, with a bootstrap interval over people (a person's photos resampled together).

    "closer" / "farther" when the whole interval is below / above 1, else "level": whether a method measurably
    beats the neutral face, the constant predictor at the prior's mean.
    """
    from scipy.stats import bootstrap  # here: scipy.stats takes seconds to import

    clusters = np.arange(len(squared)) if clusters is None else np.asarray(clusters)
    people, rows = np.unique(clusters, return_inverse=True)
    error = np.bincount(rows, squared.sum(1), len(people))  # per person: summed squared errors
    zero = np.bincount(rows, zero_squared.sum(1), len(people))  # and those of predicting 0
    ratio = float(np.sqrt(error.sum() / zero.sum()))
    interval = bootstrap(
        (error, zero),
        lambda e, z, axis=-1: np.sqrt(e.sum(axis) / z.sum(axis)),
        paired=True,
        vectorized=True,
        n_resamples=resamples,
        confidence_level=confidence,
        method="percentile",
        random_state=0,
    ).confidence_interval
    low, high = float(interval.low), float(interval.high)
    verdict = "closer" if high < 1 else "farther" if low > 1 else "level"
    return {"ratio": ratio, "interval": [low, high], "confidence": confidence, "verdict": verdict}


def recovery(
    predicted: np.ndarray, truth: np.ndarray, visibility: np.ndarray | None, identities: np.ndarray | None = None
) -> dict:
    """Parameter-recovery RMSE: overall, per group of game/parameters.csv, and per visibility quartile; against
    predicting 0 (the neutral face) with a bootstrap interval over `identities` (each image its own if None)."""
    from scipy.stats import spearmanr  # here: scipy.stats takes seconds to import and only this needs it

    squared = (np.asarray(predicted, np.float64) - truth) ** 2
    zero_squared = np.asarray(truth, np.float64) ** 2
    per_parameter = np.sqrt(squared.mean(0))
    groups = [p.group for p in P.table()]
    result = {
        "rmse": float(np.sqrt(squared.mean())),
        "rmse_predicting_zero": float(np.sqrt(zero_squared.mean())),  # the prior's mean
        "against_zero": ratio_interval(squared, zero_squared, identities),
        "groups": {
            g: float(np.sqrt(squared[:, [i for i, h in enumerate(groups) if h == g]].mean()))
            for g in dict.fromkeys(groups)
        },
    }
    if visibility is not None:
        quartiles = np.array_split(np.argsort(visibility, kind="stable"), 4)  # least visible first
        result["visibility_quartiles"] = {
            f"Q{k + 1}": float(np.sqrt(squared[:, q].mean())) for k, q in enumerate(quartiles)
        }
        result["visibility_quartiles_predicting_zero"] = {
            f"Q{k + 1}": float(np.sqrt(zero_squared[:, q].mean())) for k, q in enumerate(quartiles)
        }
        visible = np.flatnonzero(visibility >= VISIBLE_GREY_LEVELS)
        correlation = pearson(predicted, truth)
        names = [p.name for p in P.table()]
        result["visible"] = {
            "threshold_grey_levels": VISIBLE_GREY_LEVELS,
            "rmse": float(np.sqrt(squared[:, visible].mean())),
            "rmse_predicting_zero": float(np.sqrt(zero_squared[:, visible].mean())),
            "against_zero": ratio_interval(squared[:, visible], zero_squared[:, visible], identities),
            "correlation_mean": float(correlation[visible].mean()),
            "parameters": {
                names[i]: {
                    "rmse": float(per_parameter[i]),
                    "rmse_predicting_zero": float(np.sqrt(zero_squared[:, i].mean())),
                    "correlation": float(correlation[i]),
                }
                for i in visible
            },
        }
        result["spearman_visibility_vs_rmse"] = float(spearmanr(visibility, per_parameter).statistic)
    return result


def pearson(predicted: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Per-parameter Pearson correlation of predictions and ground truth (0 where either is constant)."""
    x = np.asarray(predicted, np.float64) - np.mean(predicted, 0)
    y = np.asarray(truth, np.float64) - np.mean(truth, 0)
    denominator = np.sqrt((x**2).sum(0) * (y**2).sum(0))
    return np.divide((x * y).sum(0), denominator, out=np.zeros(x.shape[1]), where=denominator > 0)


def evaluate(
    benches: dict[str, B.Benchmark],
    descriptors: list,
    batch_size: int = 64,
    mask: str | None = None,
    visibility: np.ndarray | None = None,
    likeness_images: int = 0,
    imitator: tuple[torch.nn.Module | None, str] = (None, "no imitator given"),
) -> dict:
    """Accuracy per descriptor and benchmark, images/s, and recovery metrics where ground truth exists.

    With likeness_images > 0 and an F_id row, each parameter row also gets the likeness of the engine's character
    on that many images per benchmark (row "likeness", "imitator_vs_engine_psnr_db"; per benchmark under
    row[bench]["likeness"]); `imitator` is what load_imitator returns, the gap is left out without a network.
    """
    results: dict = {d.name: {} for d in descriptors}
    likeness = {"images": {}, "imitator": imitator[1], "skipped": None}
    if likeness_images <= 0:
        likeness["skipped"] = "switched off (--likeness-images 0)"
    elif not any(isinstance(d, FaceIdDescriptor) for d in descriptors):
        likeness["skipped"] = "it needs F_id, and this run has no F_id row (--face-id none, or it did not load)"
    elif not any(d.is_parameters for d in descriptors):
        likeness["skipped"] = "no row regresses game parameters"
    recoveries: dict = {}
    seconds: dict[str, float] = {}
    images = 0
    size = next(iter(benches.values())).size
    for d in descriptors:  # one untimed call first: lazy initialisation and kernel selection are not speed
        d(torch.zeros(min(batch_size, 8), 3, size, size))
    for name, bench in benches.items():
        log.info("%s: %d pairs over %d images", name, len(bench), bench.num_images)
        features = compute_descriptors(bench, descriptors, batch_size, mask, seconds)
        images += bench.num_images
        for d in descriptors:
            x = features[d.name]
            results[d.name][name] = verify(
                x[bench.pairs[:, 0]], x[bench.pairs[:, 1]], bench.is_same, bench.folds
            ).as_dict()
            if bench.parameters is not None and d.is_parameters:
                recoveries.setdefault(d.name, {})[name] = recovery(x, bench.parameters, visibility, bench.identities)
        if not likeness["skipped"]:
            log.info("%s: likeness of the engine's character", name)
            for row, scores in engine_likeness(bench, features, descriptors, likeness_images, imitator[0]).items():
                results[row][name]["likeness"] = scores
                likeness["images"][name] = scores["count"]
    # The mean is over the paper's benchmarks among those run (like Table 3), the synthetic set only when alone.
    averaged = [b for b in benches if b != "synthetic"] or list(benches)
    for d in descriptors:
        results[d.name]["mean"] = float(np.mean([results[d.name][b]["accuracy"] for b in averaged]))
        results[d.name]["images_per_second"] = images / max(seconds.get(d.name, 0.0), 1e-9)
        # The table's likeness columns pool the images of every benchmark run (means weighted by image count).
        scores = [results[d.name][b]["likeness"] for b in benches if "likeness" in results[d.name][b]]
        pooled = {"likeness": "face_id_cosine", "imitator_vs_engine_psnr_db": "imitator_vs_engine_psnr_db"}
        for column, key in pooled.items():
            if scores and key in scores[0]:
                results[d.name][column] = float(
                    np.average([s[key] for s in scores], weights=[s["count"] for s in scores])
                )
    return {"results": results, "recovery": recoveries, "likeness": likeness}


def markdown(report: dict) -> str:
    """The report as a Table-3-style Markdown table, the paper's rows, benchmarks and recovery."""
    benches = list(report["benchmarks"])
    head = [COLUMNS[b] for b in benches] + [
        "Mean",
        "images/s",
        "likeness (F_id cosine photo vs engine render)",
        "imitator vs engine PSNR (dB)",
    ]
    lines = [
        f"# Face verification ({report['protocol']})",
        "",
        f"Image size {report['image_size']} px, mask: {report['mask'] or 'none'}, device: {report['device']}, "
        f"{report['created']}.",
        "",
        "| descriptor | " + " | ".join(head) + " |",
        "|---" * (len(head) + 1) + "|",
    ]
    for name, row in report["results"].items():
        cells = [f"{row[b]['accuracy']:.4f} ± {row[b]['std']:.4f}" for b in benches]
        cells += [f"{row['mean']:.4f}", f"{row['images_per_second']:.0f}"]
        cells += [
            f"{row['likeness']:.3f}" if "likeness" in row else "-",
            f"{row['imitator_vs_engine_psnr_db']:.1f}" if "imitator_vs_engine_psnr_db" in row else "-",
        ]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    for name, reason in report["skipped"].items():
        lines.append(f"| {name} | skipped: {reason} |")
    likeness = report.get("likeness", {})
    if likeness.get("images"):
        used = ", ".join(f"{n} of {COLUMNS[b]}" for b, n in likeness["images"].items())
        gap = (
            "through" if any("imitator_vs_engine_psnr_db" in r for r in report["results"].values()) else "not measured:"
        )
        lines += [
            "",
            f"Likeness (rows that regress game parameters; '-' for the others): the {report['face_id']} "
            f"F_id cosine between each photo (unmasked) and the game engine's render of the parameters "
            f"regressed from it, the character the player actually gets, on "
            f"{sum(likeness['images'].values())} images ({used}), evenly spread over each benchmark. "
            f"Imitator vs engine PSNR {gap} {likeness['imitator']}.",
        ]
    elif likeness.get("skipped"):
        lines += ["", f"Likeness of the engine's character not measured: {likeness['skipped']}."]
    lines += [
        "",
        "Paper (Table 3, Table 6 for masks; GTX 1080Ti, ~10^3 images/s):",
        "",
        "| paper row | LFW | CFP_FF | CFP_FP | AgeDB | Mean |",
        "|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {n} | " + " | ".join(f"{v:.4f}" for v in values) + " |" for n, values in PAPER[report["mask"]].items()
    ]
    lines += ["", "## Benchmarks", ""]
    lines += [
        f"- **{b}**: {s['pairs']} pairs ({s['same']} same), {s['images']} images, {s['folds']} folds; {s['alignment']}"
        for b, s in report["benchmarks"].items()
    ]
    for name, per_bench in report["recovery"].items():
        for bench, r in per_bench.items():
            lines += [
                "",
                f"## Parameter recovery: {name} on {bench}",
                "",
                f"RMSE {r['rmse']:.4f} (predicting 0 everywhere: {r['rmse_predicting_zero']:.4f}); {verdict_line(r)}",
                "",
                "| group | RMSE |",
                "|---|---|",
            ]
            lines += [f"| {g} | {v:.4f} |" for g, v in r["groups"].items()]
            if "visibility_quartiles" in r:
                zero = r["visibility_quartiles_predicting_zero"]
                lines += [
                    "",
                    "| visibility quartile (Q1 least, Q4 most visible) | RMSE | predicting 0 |",
                    "|---|---|---|",
                ]
                lines += [f"| {q} | {v:.4f} | {zero[q]:.4f} |" for q, v in r["visibility_quartiles"].items()]
                lines += [
                    "",
                    f"Spearman correlation of visibility and per-parameter RMSE: "
                    f"{r['spearman_visibility_vs_rmse']:.3f}",
                ]
                v = r["visible"]
                lines += [
                    "",
                    f"Visible parameters (one unit moves a 256 px screenshot by >= "
                    f"{v['threshold_grey_levels']:g} grey level on average): RMSE {v['rmse']:.4f}, "
                    f"predicting 0: {v['rmse_predicting_zero']:.4f}, mean correlation with the truth "
                    f"{v['correlation_mean']:.3f} (0 for any constant); {verdict_line(v)}",
                    "",
                    "| visible parameter | RMSE | predicting 0 | correlation |",
                    "|---|---|---|---|",
                ]
                lines += [
                    f"| {name} | {x['rmse']:.4f} | {x['rmse_predicting_zero']:.4f} | {x['correlation']:.3f} |"
                    for name, x in v["parameters"].items()
                ]
    return "\n".join(lines) + "\n"


def verdict_line(recovered: dict) -> str:
    """One sentence: the RMSE ratio to the neutral face's, its interval, and what the interval says."""
    a = recovered.get("against_zero")
    if a is None:  # a report written before the interval existed
        return "no interval"
    low, high = a["interval"]
    words = {"closer": "measurably closer than", "farther": "measurably farther than", "level": "level with"}
    return (
        f"RMSE / predicting 0 = {a['ratio']:.4f} ({a['confidence']:.0%} bootstrap interval over people "
        f"{low:.4f}-{high:.4f}): {words[a['verdict']]} the neutral face."
    )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python eval/verify.py", description=__doc__.split("\n")[0])
    parser.add_argument("--bench", nargs="+", default=["lfw", "cfp_ff", "cfp_fp", "agedb"], choices=B.BENCHMARKS)
    parser.add_argument(
        "--ckpt",
        action="append",
        default=[],
        metavar="[NAME=]PATH",
        help="regression checkpoint; repeat for ablations (first unnamed one is 'ours')",
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
    parser.add_argument("--max-pairs", type=int, help="at most about this many pairs per benchmark (quick runs)")
    parser.add_argument("--synthetic-pairs", type=int, default=6000, help="pairs drawn from the synthetic set")
    parser.add_argument("--seed", type=int, default=0, help="seed of the synthetic pairs")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--visibility", default=str(VISIBILITY_FILE), help="per-parameter sensitivity table")
    parser.add_argument("--out", help="output folder (default runs/eval/<date-time>)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> dict:
    """Run the CLI; returns the report that it writes as results.json and results.md."""
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    args = parse_args(argv)
    created = datetime.datetime.now().isoformat(timespec="seconds")
    out = Path(args.out or REPO / "runs" / "eval" / created.replace(":", ""))
    benches = {}
    for name in args.bench:
        path = getattr(args, f"root_{name}") or B.locate(name, args.root)
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
    descriptors, skipped = build_descriptors(args.ckpt, face_id, args.face_id_checkpoint, args.device)
    if not descriptors:
        raise SystemExit("no descriptor to evaluate: give --ckpt and/or a loadable --face-id")
    report = {
        "kind": "likeness.verification",
        "version": 1,
        "created": created,
        "argv": sys.argv[1:] if argv is None else argv,
        "device": args.device,
        "image_size": args.size,
        "mask": args.mask,
        "protocol": "3DMM-CNN: 10 folds; PCA on the training folds (no reduction), signed sqrt, cosine, "
        "best training-fold threshold",
        "checkpoints": args.ckpt,
        "face_id": face_id,
        "skipped": skipped,
        "benchmarks": {n: b.summary() for n, b in benches.items()},
        "paper": PAPER[args.mask],
    }
    visibility = read_visibility(args.visibility) if "synthetic" in benches else None
    imitator = load_imitator(args.imitator, args.ckpt) if args.likeness_images > 0 and face_id else (None, "")
    report |= evaluate(benches, descriptors, args.batch_size, args.mask, visibility, args.likeness_images, imitator)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(report, indent=2) + "\n")
    (out / "results.md").write_text(markdown(report))
    print(markdown(report))
    print(f"\nwrote {out / 'results.json'} and {out / 'results.md'}")
    return report


if __name__ == "__main__":
    main()
