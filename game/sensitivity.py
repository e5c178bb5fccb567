"""Identifiability: how much the screenshot changes per unit of each parameter, around random faces."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
from tqdm import tqdm

from game import parameters as P
from game.engine import Game

# The game's shipped table (8 faces at 256 px): what eval reads to tell visible parameters apart.
SENSITIVITY_FILE = Path(__file__).parent / "data" / "sensitivity.csv"
# Invisible: below 0.01 grey levels (of 255) per pixel per unit, i.e. over its whole range the slider
# changes fewer than ~33 pixels of a 256 px screenshot by 100 levels.
VISIBILITY_THRESHOLD = 0.01


def measure(
    size: int = 256, faces: int = 8, delta: float = 0.5, seed: int = 0, indices=None, progress: bool = True
) -> np.ndarray:
    """(267,) mean absolute pixel change (0-255 scale) per unit of each parameter, by central differences."""
    if isinstance(faces, bool) or not isinstance(faces, (int, np.integer)) or faces < 1:
        raise ValueError(f"faces must be a positive integer (random faces to average over), got {faces!r}")
    if not delta > 0 or P.LOW + delta >= P.HIGH - delta:
        raise ValueError(f"delta must be in (0, {(P.HIGH - P.LOW) / 2}), got {delta!r}")
    game = Game(size, "game")
    rng = np.random.default_rng(seed)
    # Stay delta inside the range so both probes are valid and the step is exactly 2 * delta.
    bases = rng.uniform(P.LOW + delta, P.HIGH - delta, size=(faces, P.NUM_PARAMETERS)).astype(np.float32)
    indices = range(P.NUM_PARAMETERS) if indices is None else indices
    result = np.full(P.NUM_PARAMETERS, np.nan)
    for k in tqdm(indices, desc="sensitivity", disable=not progress):
        changes = []
        for base in bases:
            up, down = base.copy(), base.copy()
            up[k] += delta
            down[k] -= delta
            diff = game.render(up).astype(np.float32) - game.render(down).astype(np.float32)
            changes.append(np.abs(diff).mean() / (2 * delta))
        result[k] = float(np.mean(changes))
    return result


def write_table(values: np.ndarray, out: str | Path, size: int, faces: int) -> Path:
    """CSV (one row per parameter) + JSON summary beside it."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["index", "name", "group", "kind", "mean_abs_change_per_unit"])
        for p in P.table():
            writer.writerow([p.index, p.name, p.group, p.kind, f"{values[p.index]:.4f}"])
    invisible = [P.table()[i].name for i in np.flatnonzero(values < VISIBILITY_THRESHOLD)]
    summary = {
        "size": size,
        "faces": faces,
        "threshold": VISIBILITY_THRESHOLD,
        "parameter_table_version": P.TABLE_VERSION,
        "min": float(np.nanmin(values)),
        "median": float(np.nanmedian(values)),
        "max": float(np.nanmax(values)),
        "least_visible": [P.table()[i].name for i in np.argsort(values)[:10]],
        "invisible": invisible,
    }
    out.with_suffix(".json").write_text(json.dumps(summary, indent=2) + "\n")
    return out
