"""Face-verification benchmarks as distributed (LFW, CFP, insightface .bin, synthetic photos), aligned to our template.

Every reader returns a `Benchmark`: a list of images, each read and warped to the template of docs/contracts.md
section 2 on demand, and pairs (index A, index B, is_same, fold) over them with 10 folds. Images are warped
with the least-squares similarity from five points per image; where a benchmark ships no points, a fixed
placement stands in (stated per reader). Outside the source image the warp replicates the edge pixels.
Nothing is ever downloaded: a missing file is an error naming it and where the benchmark is published.
Here: which benchmarks there are, where they sit under a root, `load` and `limit_pairs`; the readers are in
base.py (the `Benchmark`), photos.py (LFW, CFP, landmarks files), insightface.py (.bin) and synthetic.py.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from eval.benchmarks.base import (
    ARCFACE_PLACEMENT,
    ARCFACE_POINTS_112,
    FIXED_PLACEMENT,
    LFW_POINTS_250,
    NUM_FOLDS,
    WHERE,
    Benchmark,
    BenchmarkFileError,
    MissingBenchmarkFile,
    align,
    read_image,
    require,
)
from eval.benchmarks.insightface import read_bin
from eval.benchmarks.photos import detect_landmarks, read_cfp, read_landmarks, read_lfw
from eval.benchmarks.synthetic import read_synthetic

__all__ = [
    "ARCFACE_PLACEMENT",
    "ARCFACE_POINTS_112",
    "BENCHMARKS",
    "FIXED_PLACEMENT",
    "LFW_POINTS_250",
    "NUM_FOLDS",
    "WHERE",
    "Benchmark",
    "BenchmarkFileError",
    "MissingBenchmarkFile",
    "align",
    "detect_landmarks",
    "limit_pairs",
    "load",
    "locate",
    "read_bin",
    "read_cfp",
    "read_image",
    "read_landmarks",
    "read_lfw",
    "read_synthetic",
    "require",
]

BENCHMARKS = ("lfw", "cfp_ff", "cfp_fp", "agedb", "synthetic")
# Where each benchmark sits under a common --root, in order of preference.
DEFAULT_LOCATIONS = {
    "lfw": ("lfw", "lfw.bin"),
    "cfp_ff": ("cfp-dataset", "cfp_ff.bin"),
    "cfp_fp": ("cfp-dataset", "cfp_fp.bin"),
    "agedb": ("agedb_30.bin",),
    "synthetic": ("synthetic",),
}


def locate(name: str, root: str | Path) -> Path:
    """Where benchmark `name` sits under a common root folder (the first of DEFAULT_LOCATIONS that exists)."""
    candidates = [Path(root) / c for c in DEFAULT_LOCATIONS[name]]
    found = next((c for c in candidates if c.exists()), None)
    if found is None:
        source = {"lfw": "lfw", "cfp_ff": "cfp", "cfp_fp": "cfp", "agedb": "bin", "synthetic": "synthetic"}[name]
        raise MissingBenchmarkFile(
            f"{name}: none of {', '.join(map(str, candidates))} exists. The benchmark is "
            f"published at {WHERE[source]}; place it there yourself (nothing is downloaded "
            f"at run time), or point --root-{name.replace('_', '-')} at it."
        )
    return found


def load(
    name: str, path: str | Path, size: int, landmarks: str | Path | None = None, max_pairs: int = 6000, seed: int = 0
) -> Benchmark:
    """Benchmark `name` from `path`: its folder as distributed, or an insightface .bin file."""
    path = Path(path)
    if name not in BENCHMARKS:
        raise ValueError(f"unknown benchmark {name!r}; choose from {BENCHMARKS}")
    if path.suffix == ".bin" or name == "agedb":
        return read_bin(path if path.suffix == ".bin" else path / "agedb_30.bin", size, name)
    if name == "lfw":
        return read_lfw(path, size, landmarks)
    if name in ("cfp_ff", "cfp_fp"):
        return read_cfp(path, name[-2:].upper(), size, landmarks)
    return read_synthetic(path, size, max_pairs, seed)


def limit_pairs(bench: Benchmark, max_pairs: int) -> Benchmark:
    """About `max_pairs` pairs, half same, taken round-robin over the folds, and only their images (quick runs)."""
    keep = []
    for same in (True, False):
        index = np.flatnonzero(bench.is_same == same)
        folds = bench.folds[index]
        by_fold = np.argsort(folds, kind="stable")
        rank = np.empty(len(index), int)  # position of each pair within its fold
        rank[by_fold] = np.arange(len(index)) - np.searchsorted(folds[by_fold], folds[by_fold])
        keep.append(index[np.lexsort((folds, rank))][: max(1, max_pairs // 2)])
    keep = np.sort(np.concatenate(keep))
    used, pairs = np.unique(bench.pairs[keep], return_inverse=True)
    return Benchmark(
        bench.name,
        bench.size,
        [bench.sources[i] for i in used],
        [bench.points[i] for i in used],
        bench.placement,
        pairs.reshape(-1, 2),
        bench.is_same[keep],
        bench.folds[keep],
        bench.alignment,
        None if bench.parameters is None else bench.parameters[used],
        None if bench.identities is None else bench.identities[used],
    )
