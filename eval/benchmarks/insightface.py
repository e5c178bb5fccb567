"""insightface's verification .bin files (agedb_30.bin, lfw.bin, cfp_ff.bin, cfp_fp.bin): ArcFace-aligned crops."""

from __future__ import annotations

import pickle
from pathlib import Path

import cv2
import numpy as np

from eval.benchmarks.base import ARCFACE_PLACEMENT, NUM_FOLDS, Benchmark, BenchmarkFileError, require


class _BinUnpickler(pickle.Unpickler):
    """Unpickles (list of bytes, list of bools) only: a .bin cannot run code (pickle otherwise could)."""

    ALLOWED = {
        ("_codecs", "encode"),  # bytes as protocol 2 writes them from Python 3
        ("__builtin__", "bytes"),  # b"" at protocol 2
        ("builtins", "bytes"),
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


def _check_contents(path: Path, loaded) -> tuple[list[bytes], np.ndarray]:
    """(encoded images, is_same flags) of an unpickled .bin, or BenchmarkFileError naming the file and the index."""
    if not (isinstance(loaded, (tuple, list)) and len(loaded) == 2):
        raise BenchmarkFileError(f"{path}: holds a {type(loaded).__name__}, not the pair (images, is_same flags)")
    images, flags = loaded
    if not isinstance(images, (list, tuple)) or not isinstance(flags, (list, tuple, np.ndarray)) or np.ndim(flags) != 1:
        raise BenchmarkFileError(f"{path}: expected a list of encoded images and a list of is_same flags")
    if len(flags) == 0 or len(images) != 2 * len(flags):
        raise BenchmarkFileError(
            f"{path}: {len(images)} images for {len(flags)} pairs; expected two images per pair, at least one pair"
        )
    for index, flag in enumerate(flags):
        if not (isinstance(flag, (bool, np.bool_)) or (isinstance(flag, (int, np.integer)) and flag in (0, 1))):
            raise BenchmarkFileError(f"{path}: is_same flag {index} is {flag!r}, not a boolean")
    is_same, images = np.array([bool(flag) for flag in flags]), list(images)
    for index, image in enumerate(images):
        if isinstance(image, np.ndarray) and image.dtype == np.uint8 and image.ndim == 1:
            image = images[index] = image.tobytes()  # some writers store the encoded bytes as a uint8 array
        # A decode at 1/8 scale is cheap (a whole agedb_30.bin in about a second) and finds what is not an image.
        if (
            not isinstance(image, (bytes, bytearray))
            or not image  # OpenCV asserts on an empty buffer instead of returning None
            or cv2.imdecode(np.frombuffer(image, np.uint8), cv2.IMREAD_REDUCED_COLOR_8) is None
        ):
            raise BenchmarkFileError(f"{path}: image {index} cannot be decoded (expected encoded JPEG or PNG bytes)")
    return images, is_same


def read_bin(path: str | Path, size: int, name: str | None = None) -> Benchmark:
    """An insightface verification .bin (agedb_30.bin, lfw.bin, cfp_ff.bin, cfp_fp.bin).

    The file pickles (encoded images, is_same flags): images 2k and 2k+1 form pair k, and the pairs fall into 10
    consecutive folds of equal size. The 112x112 crops are ArcFace-aligned: they are mapped to our template by
    the similarity from ArcFace's five-point template, so our frame reaches beyond the crop, and that area is
    filled by replicating the crop's edge pixels.
    """
    path = require(Path(path), "bin")
    if path.is_dir():
        raise BenchmarkFileError(f"{path}: is a folder, not an insightface verification .bin")
    with open(path, "rb") as f:
        try:
            loaded = _BinUnpickler(f, encoding="bytes").load()
        except Exception as error:  # noqa: BLE001 - garbage makes pickle raise nearly anything; all mean the same
            raise BenchmarkFileError(
                f"{path}: not an insightface verification .bin ({type(error).__name__}: {error})"
            ) from None
    images, is_same = _check_contents(path, loaded)
    count = len(is_same)
    pairs = np.arange(2 * count).reshape(count, 2)
    folds = np.arange(count) * NUM_FOLDS // count  # consecutive, equal when count divides by 10
    return Benchmark(
        name or path.stem,
        size,
        images,
        [None] * len(images),
        ARCFACE_PLACEMENT,
        pairs,
        is_same,
        folds,
        f"{path.name}: ArcFace 112x112 crops mapped by ArcFace's template; beyond the crop, edge pixels replicated",
    )
