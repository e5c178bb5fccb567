"""Face-photo sets, the source domain (docs/contracts.md 4.3): `data.source` and the three layouts read.

Three layouts are read, each into a PhotoSet (image path, identity, split, five template points):
- CelebA as published (img_align_celeba/ + identity, partition and, if present, landmark lists);
- a folder per identity (ROOT/<identity>/*.jpg|jpeg|png, optional landmarks.csv);
- our synthetic photo set (`python -m game generate --style photo`: manifest.json, identities.npy, points.npy).
Every rejection names the file that caused it. Aligning and augmenting the photos: datamodules/photos.py.
"""

from __future__ import annotations

import csv
import logging
import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Literal, get_args

import numpy as np

from datamodules.screenshots import IMAGE_SUFFIXES, is_number, open_screenshot_set
from datamodules.split import load_or_make_split

log = logging.getLogger(__name__)

PhotoKind = Literal["celeba", "folders", "synthetic"]
OnCorrupt = Literal["raise", "skip"]
KINDS: tuple[str, ...] = get_args(PhotoKind)

CELEBA_PAGE = "https://mmlab.ie.cuhk.edu.hk/projects/CelebA.html"
CELEBA_PARTITIONS = {0: "train", 1: "val", 2: "test"}
CELEBA_LANDMARK_COLUMNS = [
    "lefteye_x",
    "lefteye_y",
    "righteye_x",
    "righteye_y",
    "nose_x",
    "nose_y",
    "leftmouth_x",
    "leftmouth_y",
    "rightmouth_x",
    "rightmouth_y",
]
# CelebA names the points from the viewer: "lefteye" is the eye on the image's left, the subject's right
# eye, which is our template's first point; its column order is therefore already ours (right eye,
# left eye, nose, right mouth, left mouth, where "right" is the subject's right = the viewer's left).
# The typical landmark positions in the 178x218 aligned images (pixel indices), used for every image when
# list_landmarks_align_celeba.txt is absent; as listed with ALAE's CelebA preprocessing (Pidhorskyi et
# al.). Fitted to our template they map the crop [10.5, 166.5] x [42.4, 198.4] to S px, within the image.
CELEBA_MEAN_LANDMARKS = np.array([[69, 111], [108, 111], [88, 136], [72, 152], [105, 152]], np.float32)
LANDMARKS_CSV = "landmarks.csv"
IDENTITY_SPLIT = "identity_split.json"
ON_CORRUPT: tuple[str, ...] = get_args(OnCorrupt)


@dataclass(frozen=True)
class PhotoSource:
    """`data.source`: which photo set, how it is batched and augmented (docs/contracts.md 4.3)."""

    kind: PhotoKind
    root: str
    identities_per_batch: int = 16  # P, per process
    photos_per_identity: int = 2  # K
    augment: dict | bool | None = field(default_factory=dict)  # {} = defaults, false/null = off
    val_fraction: float = 0.05  # folders / synthetic: of the identities (CelebA has its own partition)
    split_seed: int = 0
    split_path: str | None = None  # default ROOT/identity_split.json
    on_corrupt: OnCorrupt = "raise"  # or "skip": drop missing images, replace undecodable ones, log each
    num_workers: int | None = None  # default data.num_workers
    generate: dict | None = None  # synthetic: {count, size, seed, renders_per_identity} renders a missing set

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"data.source.kind must be one of {KINDS}, got {self.kind!r}")
        if self.on_corrupt not in ON_CORRUPT:
            raise ValueError(f"data.source.on_corrupt must be one of {ON_CORRUPT}, got {self.on_corrupt!r}")
        if self.generate is not None and self.kind != "synthetic":
            raise ValueError(f"data.source.generate renders our synthetic photo set; kind is {self.kind!r}")

    @classmethod
    def of(cls, settings: PhotoSource | dict) -> PhotoSource:
        """`data.source` from a dict as well (Python callers, a checkpoint's hyper-parameters): an unknown or
        missing key is an error naming it."""
        if isinstance(settings, cls):
            return settings
        known = {f.name for f in fields(cls)}
        unknown = set(settings) - known
        if unknown:
            raise ValueError(f"data.source: unknown keys {sorted(unknown)}; known: {sorted(known)}")
        for key in ("kind", "root"):
            if key not in settings:
                raise ValueError(f"data.source needs {key!r} (e.g. source: {{kind: celeba, root: data/celeba}})")
        return cls(**settings)


@dataclass(frozen=True)
class PhotoSet:
    """Photos with identity labels: row i is `files[i]` of person `identities[i]` in split `splits[i]`."""

    root: Path
    kind: str
    files: list[Path]
    identities: np.ndarray  # int64 (N,); rows with one label are one person
    splits: np.ndarray  # str (N,): "train" | "val" | "test"
    points: np.ndarray | None  # float32 (N, 5, 2) template points, pixels (centres at +0.5); None: already aligned
    parameters: np.ndarray | None = None  # float32 (N, 267) ground truth (synthetic sets only), for evaluation
    split_file: Path | None = None  # the identity split.json (None: the set's own partition)
    parameter_table_version: str | None = None

    def __len__(self) -> int:
        return len(self.files)

    def rows(self, split: str) -> np.ndarray:
        """Rows of one split, in order."""
        return np.flatnonzero(self.splits == split)


def open_photo_set(
    kind: str,
    root: str | Path,
    val_fraction: float = 0.05,
    split_seed: int = 0,
    split_path: str | Path | None = None,
    on_corrupt: str = "raise",
) -> PhotoSet:
    """Open a photo set of `kind` (celeba | folders | synthetic); folder and synthetic sets are split by identity."""
    root = Path(root)
    if kind not in KINDS:
        raise ValueError(f"data.source.kind must be one of {KINDS}, got {kind!r}")
    if on_corrupt not in ON_CORRUPT:
        raise ValueError(f"data.source.on_corrupt must be one of {ON_CORRUPT}, got {on_corrupt!r}")
    if kind == "celeba":
        return read_celeba(root, on_corrupt)
    photos = read_folders(root, on_corrupt) if kind == "folders" else read_synthetic(root)
    split_file = Path(split_path) if split_path else root / IDENTITY_SPLIT
    labels, inverse = np.unique(photos.identities, return_inverse=True)
    split = load_or_make_split(split_file, len(labels), val_fraction, split_seed)  # over identities, not photos
    is_val = np.isin(inverse, split["val"])
    splits = np.where(is_val, "val", "train")
    return PhotoSet(
        photos.root,
        kind,
        photos.files,
        photos.identities,
        splits,
        photos.points,
        photos.parameters,
        split_file,
        photos.parameter_table_version,
    )


# ---------------------------------------------------------------------------------------------- readers


def read_celeba(root: Path, on_corrupt: str = "raise") -> PhotoSet:
    """CelebA's aligned images with identities, its train/val/test partition and (if present) its landmarks."""
    images = root / "img_align_celeba"
    identity_file, partition_file = root / "identity_CelebA.txt", root / "list_eval_partition.txt"
    for needed in (images, identity_file, partition_file):
        if not needed.exists():
            raise FileNotFoundError(
                f"{needed}: missing. CelebA is published by MMLAB, CUHK at {CELEBA_PAGE} (Align&Cropped images "
                f"and the Anno/ and Eval/ lists); place img_align_celeba/, identity_CelebA.txt, "
                f"list_eval_partition.txt and optionally list_landmarks_align_celeba.txt directly in {root}"
            )
    identities = _read_name_table(identity_file, 1)
    partitions = _read_name_table(partition_file, 1)
    names = sorted(identities)
    _check_same_names(partition_file, partitions, names, identity_file)
    landmark_file = root / "list_landmarks_align_celeba.txt"
    if landmark_file.exists():
        landmarks = _read_name_table(landmark_file, 10, header=CELEBA_LANDMARK_COLUMNS)
        _check_same_names(landmark_file, landmarks, names, identity_file)
        # Landmarks are pixel indices; +0.5 turns them into our continuous coordinates (contracts section 4).
        points = np.array([landmarks[name] for name in names], np.float32).reshape(-1, 5, 2) + 0.5
    else:
        log.info(
            "%s absent: aligning every CelebA image with the typical landmarks %s",
            landmark_file,
            CELEBA_MEAN_LANDMARKS.tolist(),
        )
        points = np.broadcast_to(CELEBA_MEAN_LANDMARKS + 0.5, (len(names), 5, 2))
    splits = np.array([CELEBA_PARTITIONS.get(int(partitions[name][0]), "") for name in names])
    if not np.isin(splits, list(CELEBA_PARTITIONS.values())).all():
        bad = names[int(np.argmin(np.isin(splits, list(CELEBA_PARTITIONS.values()))))]
        raise ValueError(f"{partition_file}: {bad} has partition {partitions[bad][0]}, expected 0, 1 or 2")
    keep = _present(images, names, on_corrupt)
    return PhotoSet(
        root=root,
        kind="celeba",
        files=[images / names[i] for i in keep],
        identities=np.array([int(identities[names[i]][0]) for i in keep], np.int64),
        splits=splits[keep],
        points=np.ascontiguousarray(points[keep]),
    )


def read_folders(root: Path, on_corrupt: str = "raise") -> PhotoSet:
    """One subfolder per person; five points from landmarks.csv, else the photos are taken as aligned already."""
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: missing (expected one subfolder of photos per identity)")
    people = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    files, identities = [], []
    for label, person in enumerate(people):
        photos = sorted(p for p in person.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        files += photos
        identities += [label] * len(photos)
    if not files:
        raise ValueError(f"{root}: no photos (expected {root}/<identity>/*.jpg|jpeg|png)")
    points = None
    if (root / LANDMARKS_CSV).exists():
        table = _read_landmarks_csv(root / LANDMARKS_CSV)
        missing = [f for f in files if f.relative_to(root).as_posix() not in table]
        if missing:
            raise ValueError(
                f"{root / LANDMARKS_CSV}: no row for {missing[0].relative_to(root).as_posix()} "
                f"({len(missing)} of {len(files)} photos have none)"
            )
        points = np.array([table[f.relative_to(root).as_posix()] for f in files], np.float32).reshape(-1, 5, 2)
    else:
        log.info("%s: no %s, so the photos are taken as aligned to the template already", root, LANDMARKS_CSV)
    return PhotoSet(root, "folders", files, np.array(identities, np.int64), np.full(len(files), "train"), points)


def read_synthetic(root: Path) -> PhotoSet:
    """Our rendered photo set: identities.npy, points.npy and the ground-truth parameters (evaluation only)."""
    screenshots = open_screenshot_set(root)
    if screenshots.style != "photo":
        raise ValueError(f"{root / 'manifest.json'}: style {screenshots.style!r}, a source set must be style 'photo'")
    count = len(screenshots)
    identities = _load_array(root / "identities.npy", (count,))
    points = _load_array(root / "points.npy", (count, 5, 2))
    return PhotoSet(
        root,
        "synthetic",
        screenshots.files,
        identities.astype(np.int64),
        np.full(count, "train"),
        points.astype(np.float32),
        screenshots.parameters,
        parameter_table_version=screenshots.parameter_table_version,
    )


def _read_name_table(path: Path, columns: int, header: list[str] | None = None) -> dict[str, list[str]]:
    """CelebA's "name value ..." lists; with `header`, the count line and the column-name line come first."""
    lines = path.read_text().splitlines()
    start = 0
    if header is not None:
        if len(lines) < 2 or lines[1].split() != header:
            raise ValueError(f"{path}: line 2 should name the columns {' '.join(header)}")
        start = 2
    table = {}
    for number, line in enumerate(lines[start:], start=start + 1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != columns + 1:
            raise ValueError(f"{path} line {number}: {len(fields) - 1} values, expected {columns}")
        table[fields[0]] = fields[1:]
    if not table:
        raise ValueError(f"{path}: no rows")
    return table


def _check_same_names(path: Path, table: dict, names: list[str], reference: Path) -> None:
    if len(table) != len(names) or not all(name in table for name in names):
        missing = next((name for name in names if name not in table), None) or next(iter(set(table) - set(names)))
        raise ValueError(f"{path}: lists {len(table)} images, {reference} {len(names)}; first mismatch: {missing}")


def _present(folder: Path, names: list[str], on_corrupt: str) -> np.ndarray:
    """Rows whose image exists (one directory listing); a missing image is an error or, with skip, dropped."""
    present = np.isin(names, [entry.name for entry in os.scandir(folder)])
    if not present.all():
        first = folder / names[int(np.argmin(present))]
        message = f"{first}: image missing ({int((~present).sum())} of {len(names)} images missing)"
        if on_corrupt == "raise":
            raise FileNotFoundError(message)
        log.warning("%s; skipping them (on_corrupt: skip)", message)
    return np.flatnonzero(present)


def _read_landmarks_csv(path: Path) -> dict[str, list[float]]:
    """landmarks.csv rows: relative path, then x, y of our five template points in pixels (header allowed)."""
    table = {}
    with path.open(newline="") as handle:
        for number, fields in enumerate(csv.reader(handle), start=1):
            if not fields or (number == 1 and not is_number(fields[-1])):
                continue
            if len(fields) != 11:
                raise ValueError(f"{path} line {number}: {len(fields) - 1} numbers, expected 10 (x, y of 5 points)")
            try:
                table[fields[0]] = [float(v) for v in fields[1:]]
            except ValueError as error:
                raise ValueError(f"{path} line {number}: a coordinate is not a number ({error})") from None
    return table


def _load_array(path: Path, shape: tuple) -> np.ndarray:
    if not path.is_file():
        raise FileNotFoundError(f"{path}: missing (a photo-style set written by `python -m game generate` has it)")
    array = np.load(path)
    if array.shape != shape:
        raise ValueError(f"{path}: shape {array.shape}, expected {shape}")
    return array
