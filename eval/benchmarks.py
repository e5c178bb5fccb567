"""Face-verification benchmarks as distributed (LFW, CFP, insightface .bin, synthetic photos), aligned to our template.

Every reader returns a `Benchmark`: a list of images, each read and warped to the template of docs/contracts.md
section 2 on demand, and pairs (index A, index B, is_same, fold) over them with 10 folds. Images are warped
with the least-squares similarity from five points per image; where a benchmark ships no points, a fixed
placement stands in (stated per reader). Outside the source image the warp replicates the edge pixels.
Nothing is ever downloaded: a missing file is an error naming it and where the benchmark is published.
"""

from __future__ import annotations

import os
import pickle
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from itertools import combinations
from pathlib import Path

import cv2
import numpy as np

from game.framing import align_to_template

NUM_FOLDS = 10
BENCHMARKS = ("lfw", "cfp_ff", "cfp_fp", "agedb", "synthetic")
WHERE = {
    "lfw": "UMass Amherst's LFW page, http://vis-www.cs.umass.edu/lfw/ (lfw.tgz or lfw-deepfunneled.tgz; pairs.txt)",
    "cfp": "the CFP dataset page, http://www.cfpw.io/ (cfp-dataset.zip)",
    "bin": "the insightface repository's dataset zoo, https://github.com/deepinsight/insightface/wiki/Dataset-Zoo "
    "(the validation .bin files packed with e.g. faces_emore / MS1M-ArcFace)",
    "synthetic": "this repository: `python -m game generate --style photo --out DIR --count N --size S`",
}
# Where each benchmark sits under a common --root, in order of preference.
DEFAULT_LOCATIONS = {
    "lfw": ("lfw", "lfw.bin"),
    "cfp_ff": ("cfp-dataset", "cfp_ff.bin"),
    "cfp_fp": ("cfp-dataset", "cfp_fp.bin"),
    "agedb": ("agedb_30.bin",),
    "synthetic": ("synthetic",),
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


def require(path: Path, source: str) -> Path:
    """`path` if it exists, else MissingBenchmarkFile naming it and where `source` ("lfw", "cfp", ...) is published."""
    if not Path(path).exists():
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
        image = read_image(self.sources[index])
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


class _Images:
    """Collects image paths in first-seen order and gives each an index."""

    def __init__(self) -> None:
        self.index: dict[Path, int] = {}

    def __call__(self, path: Path) -> int:
        return self.index.setdefault(path, len(self.index))

    def paths(self) -> list[Path]:
        return list(self.index)


def read_landmarks(path: str | Path) -> dict[str, np.ndarray]:
    """Lines "relative/path x1 y1 ... x5 y5" (template order, pixels, centres at +0.5) -> {path sans suffix: (5, 2)}."""
    if not Path(path).is_file():
        raise FileNotFoundError(f"landmarks file {path} not found")
    landmarks = {}
    for number, line in enumerate(Path(path).read_text().splitlines(), 1):
        fields = line.replace(",", " ").split()
        if not fields or fields[0].startswith("#"):
            continue
        if len(fields) != 11:
            raise ValueError(f"{path}: line {number} has {len(fields)} fields; expected a name and 10 numbers")
        landmarks[_key(fields[0])] = np.array(fields[1:], np.float64).reshape(5, 2)
    return landmarks


def _key(path: str | Path) -> str:
    return Path(path).with_suffix("").as_posix().lstrip("./")


def _points_for(paths: list[Path], root: Path, landmarks: dict | None) -> tuple[list, str]:
    """Per image the landmarks whose key matches the end of its path under `root`, else None; and a summary."""
    if not landmarks:
        return [None] * len(paths), "fixed placement (no landmarks file)"
    points = []
    for path in paths:
        parts = Path(_key(path.relative_to(root) if path.is_relative_to(root) else path)).parts
        # A key may be given relative to the root or to any folder below it ("001/frontal/01", "name/name_0001").
        found = next((landmarks[k] for k in ("/".join(parts[i:]) for i in range(len(parts))) if k in landmarks), None)
        points.append(found)
    hits = sum(p is not None for p in points)
    return points, f"landmarks file for {hits}/{len(paths)} images, fixed placement for the rest"


def detect_landmarks(bench: Benchmark, path: str | Path, progress: bool = True) -> Path:
    """Write a landmarks file for `bench` with the five points that eval.align (BlazeFace + FaceMesh) detects.

    Per image the face nearest the image centre is kept (the benchmark's subject is centred); images without a
    detected face get no line, so the fixed placement stays their fallback. Detection is slow (~0.1-0.3 s per
    image on a CPU): the file is meant to be made once and passed as --landmarks-<bench> afterwards.
    """
    from tqdm import tqdm

    from eval.align import align_faces

    base = Path(os.path.commonpath([str(Path(s).parent) for s in bench.sources]))
    lines = [f"# {bench.name}: five template points (pixels, centres at +0.5) detected by eval.align"]
    for source in tqdm(bench.sources, desc=f"detect {bench.name}", unit="img", disable=not progress):
        image = read_image(source)
        faces = align_faces(image, 64)  # the warped face is not used; a small size keeps it cheap
        if faces:
            centre = np.array([image.shape[1], image.shape[0]]) / 2
            face = min(faces, key=lambda f: np.linalg.norm((f.box[:2] + f.box[2:]) / 2 - centre))
            lines.append(
                f"{Path(source).relative_to(base).as_posix()} " + " ".join(f"{v:.2f}" for v in face.points.ravel())
            )
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text("\n".join(lines) + "\n")
    return Path(path)


def read_lfw(root: str | Path, size: int, landmarks: str | Path | None = None) -> Benchmark:
    """LFW as distributed: ROOT/<name>/<name>_<4-digit>.jpg and ROOT/pairs.txt (10 folds of 300 same + 300 different).

    LFW's images are not aligned to our template: give a landmarks file (made once by `detect_landmarks`, i.e.
    verify.py --detect); without one, LFW_POINTS_250 (scaled to the image) is the fixed placement, an estimate
    good for roughly frontal, centred faces only.
    """
    root = Path(root)
    pairs_file = require(root / "pairs.txt", "lfw")
    lines = [line for line in pairs_file.read_text().splitlines() if line.strip()]
    try:
        num_folds, per_fold = (int(v) for v in lines[0].split())
    except ValueError:
        raise ValueError(
            f"{pairs_file}: the first line must be '<folds> <pairs per fold>' like '10 300', got {lines[0]!r}"
        ) from None
    if len(lines) - 1 != num_folds * per_fold * 2:
        raise ValueError(
            f"{pairs_file}: expected {num_folds * per_fold * 2} pair lines after the header, got {len(lines) - 1}"
        )
    images, pairs, same = _Images(), [], []
    for number, line in enumerate(lines[1:], 2):
        fields = line.split()
        if len(fields) == 3:  # name n1 n2: one person
            a, b = (fields[0], fields[1]), (fields[0], fields[2])
        elif len(fields) == 4:  # name1 n1 name2 n2: two people
            a, b = (fields[0], fields[1]), (fields[2], fields[3])
        else:
            raise ValueError(
                f"{pairs_file}: line {number} has {len(fields)} fields; expected 'name n1 n2' or 'name1 n1 name2 n2'"
            )
        pairs.append([images(root / n / f"{n}_{int(k):04d}.jpg") for n, k in (a, b)])
        same.append(len(fields) == 3)
    paths = images.paths()
    for path in paths:
        require(path, "lfw")
    points, how = _points_for(paths, root, read_landmarks(landmarks) if landmarks else None)
    folds = np.arange(len(pairs)) // (2 * per_fold)  # each fold: its same lines, then its different lines
    return Benchmark(
        "lfw",
        size,
        paths,
        points,
        FIXED_PLACEMENT,
        np.array(pairs),
        np.array(same),
        folds,
        f"LFW {root}: {how} (fixed = typical LFW face placement, estimated)",
    )


def _cfp_list(path: Path) -> dict[int, Path]:
    """Pair_list_F/P.txt: lines "index path", the path relative to Protocol/."""
    listing = {}
    for number, line in enumerate(require(path, "cfp").read_text().splitlines(), 1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != 2 or not fields[0].isdigit():
            raise ValueError(f"{path}: line {number} should be 'index path', got {line!r}")
        listing[int(fields[0])] = (path.parent / fields[1]).resolve()
    return listing


def read_cfp(root: str | Path, protocol: str, size: int, landmarks: str | Path | None = None) -> Benchmark:
    """CFP (Sengupta et al. 2016) as distributed: Protocol/Split/{FF,FP}/01..10/{same,diff}.txt over Pair_list_F/P.txt.

    CFP ships no five-point landmarks in our order: give a landmarks file (`detect_landmarks`); without one the
    LFW-like fixed placement is used (a rough guess, wrong for profiles). The ArcFace-aligned cfp_ff.bin /
    cfp_fp.bin avoid both.
    """
    if protocol not in ("FF", "FP"):
        raise ValueError(f"CFP protocol must be 'FF' or 'FP', got {protocol!r}")
    root = Path(root).resolve()
    frontal = _cfp_list(root / "Protocol" / "Pair_list_F.txt")
    second = frontal if protocol == "FF" else _cfp_list(root / "Protocol" / "Pair_list_P.txt")
    images, pairs, same, folds = _Images(), [], [], []
    for fold in range(NUM_FOLDS):
        for kind in ("same", "diff"):
            path = require(root / "Protocol" / "Split" / protocol / f"{fold + 1:02d}" / f"{kind}.txt", "cfp")
            for number, line in enumerate(path.read_text().splitlines(), 1):
                if not line.strip():
                    continue
                try:
                    i, j = (int(v) for v in line.split(","))
                    a, b = frontal[i], second[j]
                except (ValueError, KeyError):
                    raise ValueError(
                        f"{path}: line {number} should be 'i,j' with indices listed in "
                        f"Pair_list_F.txt / Pair_list_{protocol[1]}.txt, got {line!r}"
                    ) from None
                pairs.append([images(a), images(b)])
                same.append(kind == "same")
                folds.append(fold)
    paths = images.paths()
    for path in paths:
        require(path, "cfp")
    points, how = _points_for(paths, root, read_landmarks(landmarks) if landmarks else None)
    return Benchmark(
        f"cfp_{protocol.lower()}",
        size,
        paths,
        points,
        FIXED_PLACEMENT,
        np.array(pairs),
        np.array(same),
        np.array(folds),
        f"CFP {root}: {how} (fixed = LFW-like placement, a rough guess)",
    )


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
