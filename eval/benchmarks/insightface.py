"""insightface's verification .bin files (agedb_30.bin, lfw.bin, cfp_ff.bin, cfp_fp.bin): ArcFace-aligned crops."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np

from eval.benchmarks.base import ARCFACE_PLACEMENT, NUM_FOLDS, Benchmark, require


class _BinUnpickler(pickle.Unpickler):
    """Unpickles (list of bytes, list of bools) only: a .bin cannot run code (pickle otherwise could)."""

    ALLOWED = {
        ("_codecs", "encode"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("numpy", "bool_"),
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"),
    }

    def find_class(self, module: str, name: str):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"{module}.{name} is not allowed in a verification .bin")
        return super().find_class(module, name)


def read_bin(path: str | Path, size: int, name: str | None = None) -> Benchmark:
    """An insightface verification .bin (agedb_30.bin, lfw.bin, cfp_ff.bin, cfp_fp.bin).

    The file pickles (encoded images, is_same flags): images 2k and 2k+1 form pair k, and the pairs fall into 10
    consecutive folds of equal size. The 112x112 crops are ArcFace-aligned: they are mapped to our template by
    the similarity from ArcFace's five-point template, so our frame reaches beyond the crop, and that area is
    filled by replicating the crop's edge pixels.
    """
    path = require(Path(path), "bin")
    with open(path, "rb") as f:
        try:
            images, is_same = _BinUnpickler(f, encoding="bytes").load()
        except (pickle.UnpicklingError, ValueError, EOFError) as error:
            raise ValueError(f"{path}: not an insightface verification .bin ({error})") from None
    if len(images) != 2 * len(is_same):
        raise ValueError(f"{path}: {len(images)} images for {len(is_same)} pairs; expected two images per pair")
    count = len(is_same)
    pairs = np.arange(2 * count).reshape(count, 2)
    folds = np.arange(count) * NUM_FOLDS // count  # consecutive, equal when count divides by 10
    return Benchmark(
        name or path.stem,
        size,
        list(images),
        [None] * len(images),
        ARCFACE_PLACEMENT,
        pairs,
        np.asarray(is_same, bool),
        folds,
        f"{path.name}: ArcFace 112x112 crops mapped by ArcFace's template; beyond the crop, edge pixels replicated",
    )
