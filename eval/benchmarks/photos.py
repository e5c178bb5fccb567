"""LFW and CFP as distributed (folders of photos and pair lists), and the five-point landmarks files that align them."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from eval.benchmarks.base import FIXED_PLACEMENT, NUM_FOLDS, Benchmark, BenchmarkFileError, read_image, require


class _Images:
    """Collects image paths in first-seen order and gives each an index."""

    def __init__(self) -> None:
        self.index: dict[Path, int] = {}

    def __call__(self, path: Path) -> int:
        return self.index.setdefault(path, len(self.index))

    def paths(self) -> list[Path]:
        return list(self.index)


def _read_lines(path: Path) -> list[str]:
    """The lines of a UTF-8 text file, or BenchmarkFileError naming it."""
    try:
        return path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as error:
        raise BenchmarkFileError(f"{path}: not UTF-8 text (byte {error.start}: {error.reason})") from None
    except IsADirectoryError:
        raise BenchmarkFileError(f"{path}: is a folder, not a text file") from None


def read_landmarks(path: str | Path) -> dict[str, np.ndarray]:
    """Lines "relative/path x1 y1 ... x5 y5" (template order, pixels, centres at +0.5) -> {path sans suffix: (5, 2)}."""
    if not Path(path).is_file():
        raise FileNotFoundError(f"landmarks file {path} not found")
    landmarks = {}
    for number, line in enumerate(_read_lines(Path(path)), 1):
        fields = line.replace(",", " ").split()
        if not fields or fields[0].startswith("#"):
            continue
        if len(fields) != 11:
            raise BenchmarkFileError(f"{path}: line {number} has {len(fields)} fields; expected a name and 10 numbers")
        try:
            points = np.array(fields[1:], np.float64).reshape(5, 2)
        except ValueError:
            points = np.full((5, 2), np.nan)
        if not np.isfinite(points).all():
            raise BenchmarkFileError(f"{path}: line {number}: the 10 values after the name must be finite numbers")
        landmarks[_key(fields[0])] = points
    return landmarks


def _is_count(text: str) -> bool:
    """Whether `text` is a positive whole number in ASCII digits (str.isdigit also takes '²' and '٣')."""
    return text.isascii() and text.isdigit() and int(text) > 0


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
    # Line numbers count every line of the file, blank ones too, so that an error points where an editor does.
    lines = [(number, line.split()) for number, line in enumerate(_read_lines(pairs_file), 1) if line.strip()]
    header = lines[0][1] if lines else []
    if len(header) != 2 or not all(_is_count(v) for v in header) or int(header[0]) != NUM_FOLDS or int(header[1]) < 1:
        got = f"line {lines[0][0]}: {' '.join(header)!r}" if lines else "an empty file"
        raise BenchmarkFileError(
            f"{pairs_file}: the first line must be '{NUM_FOLDS} <pairs per fold>' like '10 300', got {got}"
        )
    per_fold = int(header[1])
    if len(lines) - 1 != NUM_FOLDS * per_fold * 2:
        raise BenchmarkFileError(
            f"{pairs_file}: expected {NUM_FOLDS * per_fold * 2} pair lines after the header, got {len(lines) - 1}"
        )
    images, pairs, same = _Images(), [], []
    for number, fields in lines[1:]:
        if len(fields) == 3:  # name n1 n2: one person
            a, b = (fields[0], fields[1]), (fields[0], fields[2])
        elif len(fields) == 4:  # name1 n1 name2 n2: two people
            a, b = (fields[0], fields[1]), (fields[2], fields[3])
        else:
            raise BenchmarkFileError(
                f"{pairs_file}: line {number} has {len(fields)} fields; expected 'name n1 n2' or 'name1 n1 name2 n2'"
            )
        if not (_is_count(a[1]) and _is_count(b[1])) or "\0" in a[0] + b[0]:
            raise BenchmarkFileError(
                f"{pairs_file}: line {number} is {' '.join(fields)!r}; image numbers must be whole numbers from 1, "
                "as in 'name 1 2' or 'name1 1 name2 3'"
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
