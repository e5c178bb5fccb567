"""The train/val split of a set, kept on disk as split.json (docs/contracts.md 4.2).

It is drawn once from its seed and then only read, so the validation rows never change under a
run, across resumes, or between people sharing one dataset folder.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np


def make_split(count: int, val_fraction: float, seed: int) -> dict:
    """Draw a split: a seeded permutation, its first round(count * val_fraction) rows are val."""
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction}")
    if count < 2:
        raise ValueError(f"a split needs at least 2 samples, the set has {count}")
    order = np.random.default_rng(seed).permutation(count)
    num_val = min(count - 1, max(1, round(count * val_fraction)))
    return {
        "seed": seed,
        "val_fraction": val_fraction,
        "count": count,
        "train": sorted(int(i) for i in order[num_val:]),
        "val": sorted(int(i) for i in order[:num_val]),
    }


def load_or_make_split(path: str | Path, count: int, val_fraction: float, seed: int) -> dict:
    """Read split.json, or write it first; refuse one that was made for other settings."""
    path = Path(path)
    if not path.is_file():
        split = make_split(count, val_fraction, seed)
        # Write then rename: concurrent writers (DDP ranks) race harmlessly, readers never see half a file.
        temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        temporary.write_text(json.dumps(split))
        os.replace(temporary, path)
        return split
    split = json.loads(path.read_text())
    expected = {"seed": seed, "val_fraction": val_fraction, "count": count}
    found = {key: split.get(key) for key in expected}
    if found != expected:
        raise ValueError(
            f"{path} was made for {found} but this run asks for {expected}. Use the recorded settings, "
            f"or delete {path} to draw a new split (that changes the validation set)."
        )
    return split
