"""Our photo-style synthetic benchmark (a set of `game.dataset.generate`): pairs by identity, true parameters."""

from __future__ import annotations

from itertools import combinations
from pathlib import Path

import numpy as np

from eval.benchmarks.base import FIXED_PLACEMENT, NUM_FOLDS, Benchmark, require


def read_synthetic(root: str | Path, size: int, max_pairs: int = 6000, seed: int = 0) -> Benchmark:
    """Pairs from a photo-style set of `game.dataset.generate`: same = two photos of one identity, different = two
    identities; balanced, 10 folds, deterministic by `seed`; ground-truth parameters for recovery metrics."""
    from game.dataset import read_manifest

    root = Path(root)
    require(root / "manifest.json", "synthetic")
    manifest = read_manifest(root)
    if manifest.get("style") != "photo" or not manifest.get("complete"):
        raise ValueError(
            f"{root / 'manifest.json'}: need a complete photo-style set, got style="
            f"{manifest.get('style')!r}, complete={manifest.get('complete')}"
        )
    identities = np.load(require(root / "identities.npy", "synthetic"))
    points = np.load(require(root / "points.npy", "synthetic"))
    parameters = np.load(require(root / "parameters.npy", "synthetic"))
    rng = np.random.default_rng(seed)
    order = np.argsort(identities, kind="stable")
    groups = np.split(order, np.flatnonzero(np.diff(identities[order])) + 1)  # image indices per identity
    same = np.array([pair for group in groups for pair in combinations(group, 2)]).reshape(-1, 2)
    if len(same) == 0 or len(groups) < 2:
        raise ValueError(f"{root}: need two or more identities and one with two or more photos")
    count = min(len(same), max(1, max_pairs // 2))
    same = same[rng.permutation(len(same))[:count]]
    different: dict[tuple[int, int], None] = {}
    for _ in range(100 * count):  # distinct pairs of two identities, drawn until there are `count`
        a, b = sorted(rng.choice(len(identities), 2, replace=False).tolist())
        if identities[a] != identities[b]:
            different.setdefault((a, b))
            if len(different) == count:
                break
    pairs = np.concatenate([same, np.array(list(different)).reshape(-1, 2)])
    is_same = np.arange(len(pairs)) < count
    folds = np.concatenate([np.arange(count), np.arange(len(different))]) % NUM_FOLDS
    ext = manifest.get("image_format", "jpg")
    paths = [root / "images" / f"{i:07d}.{ext}" for i in range(len(identities))]
    return Benchmark(
        "synthetic",
        size,
        paths,
        list(points),
        FIXED_PLACEMENT,
        pairs,
        is_same,
        folds,
        f"synthetic {root}: ground-truth points",
        parameters,
        identities,
    )
