"""What every verification benchmark is: a `Benchmark` (images read and aligned to the template on demand, pairs in
10 folds), where each is published, and the reading and aligning of one image."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from game.framing import align_to_template

NUM_FOLDS = 10
WHERE = {
    "lfw": "UMass Amherst's LFW page, http://vis-www.cs.umass.edu/lfw/ (lfw.tgz or lfw-deepfunneled.tgz; pairs.txt)",
    "cfp": "the CFP dataset page, http://www.cfpw.io/ (cfp-dataset.zip)",
    "bin": "the insightface repository's dataset zoo, https://github.com/deepinsight/insightface/wiki/Dataset-Zoo "
    "(the validation .bin files packed with e.g. faces_emore / MS1M-ArcFace)",
    "synthetic": "this repository: `python -m game generate --style photo --out DIR --count N --size S`",
}

# LFW's 250x250 images centre a Viola-Jones face box enlarged 2.2x; these are typical positions of our five points
# there (our template order, pixel units), estimated from that construction and usual face proportions, NOT
# measured with a landmark detector: accurate to a few pixels for frontal faces only.
LFW_POINTS_250 = np.array([[104.0, 112.0], [146.0, 112.0], [125.0, 134.0], [108.0, 157.0], [142.0, 157.0]])
FIXED_PLACEMENT = LFW_POINTS_250 / 250  # fractions of the image width and height
# ArcFace's five-point template for its 112x112 crops (insightface), pixel-index coordinates (centre at j).
ARCFACE_POINTS_112 = np.array(
    [[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366], [41.5493, 92.3655], [70.7299, 92.2041]]
)
ARCFACE_PLACEMENT = (ARCFACE_POINTS_112 + 0.5) / 112  # our convention: pixel centres at +0.5


class MissingBenchmarkFile(FileNotFoundError):
    """A benchmark file is not where it should be; the message names it and where the benchmark is published."""


class BenchmarkFileError(ValueError):
    """A benchmark file is there but does not read as its format; the message names it (and the line or index)."""


def require(path: Path, source: str) -> Path:
    """`path` if it exists, else MissingBenchmarkFile naming it and where `source` ("lfw", "cfp", ...) is published."""
    try:
        found = Path(path).exists()
    except (OSError, ValueError) as error:  # a name too long, or with a NUL byte, cannot even be looked up
        raise MissingBenchmarkFile(f"{path} cannot be looked up ({error})") from None
    if not found:
        raise MissingBenchmarkFile(
            f"{path} not found. The benchmark is published at {WHERE[source]}; "
            f"place it there yourself (nothing is downloaded at run time)."
        )
    return Path(path)


def read_image(source: str | Path | bytes | np.ndarray) -> np.ndarray:
    """uint8 HxWx3 RGB from a file path or encoded image bytes."""
    if isinstance(source, (str, Path)):
        bgr = cv2.imread(str(source), cv2.IMREAD_COLOR)
    else:
        bgr = cv2.imdecode(np.frombuffer(source, np.uint8), cv2.IMREAD_COLOR)
    if bgr is None:
        raise ValueError(f"could not decode {source if isinstance(source, (str, Path)) else 'an encoded image'}")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def align(image: np.ndarray, points: np.ndarray, size: int) -> np.ndarray:
    """Warp a uint8 photo to the template at `size` px by the similarity from its five points (edges replicated)."""
    return align_to_template(image, np.asarray(points, np.float64), size)  # the warp training uses


@dataclass
class Benchmark:
    """Verification pairs over images that `image(i)` reads aligned to the template at `size` px."""

    name: str
    size: int
    sources: Sequence  # per image: a file path or encoded bytes
    points: Sequence  # per image: (5, 2) source pixels (centres at +0.5), or None for `placement`
    placement: np.ndarray  # (5, 2) fractions of the image's width/height used where points are None
    pairs: np.ndarray  # (P, 2) image indices
    is_same: np.ndarray  # (P,) bool
    folds: np.ndarray  # (P,) int in [0, NUM_FOLDS)
    alignment: str  # how the images were aligned, for the report
    parameters: np.ndarray | None = None  # (N, 267) ground-truth game parameters (synthetic only)
    identities: np.ndarray | None = None  # (N,) person of each image (synthetic only): the bootstrap's clusters

    def __len__(self) -> int:
        return len(self.pairs)

    @property
    def num_images(self) -> int:
        return len(self.sources)

    def image(self, index: int) -> np.ndarray:
        """Image `index` as uint8 (S, S, 3) RGB, aligned to the template."""
        try:
            image = read_image(self.sources[index])
        except ValueError as error:
            raise BenchmarkFileError(f"{self.name}: image {index} of the benchmark: {error}") from None
        points = self.points[index]
        if points is None:
            points = self.placement * (image.shape[1], image.shape[0])
        return align(image, points, self.size)

    def __iter__(self) -> Iterator[tuple[np.ndarray, np.ndarray, bool, int]]:
        """(image A, image B, is_same, fold) for every pair."""
        for (a, b), same, fold in zip(self.pairs, self.is_same, self.folds):
            yield self.image(a), self.image(b), bool(same), int(fold)

    def summary(self) -> dict:
        """Counts and alignment, for the report."""
        return {
            "pairs": len(self),
            "same": int(self.is_same.sum()),
            "images": self.num_images,
            "folds": int(len(np.unique(self.folds))),
            "alignment": self.alignment,
        }
