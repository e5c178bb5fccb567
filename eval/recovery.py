"""Parameter recovery on benchmarks with ground truth: RMSE overall, per group and by visibility, against the
neutral face with a bootstrap interval over people, and the sentence that reports it."""

from __future__ import annotations

import csv
import logging
from pathlib import Path

import numpy as np

from game import parameters as P
from game.sensitivity import SENSITIVITY_FILE

log = logging.getLogger(__name__)
VISIBILITY_FILE = SENSITIVITY_FILE
# A parameter is "visible" when one unit of it changes a 256 px screenshot by at least one grey level on average
# (the sensitivity table's unit). Only a handful are (skin tone, head width and length, hair colour): most of
# the 267 move the picture by hundredths of a level, so no image-based method can recover them, and an RMSE
# over all of them mostly measures how close to the prior's mean they stay.
VISIBLE_GREY_LEVELS = 1.0


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
