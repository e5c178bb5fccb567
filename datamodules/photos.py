"""Face-photo sets, the source domain (docs/contracts.md 4.3): read, align to the template, augment.

Three layouts are read, each into a PhotoSet (image path, identity, split, five template points):
- CelebA as published (img_align_celeba/ + identity, partition and, if present, landmark lists);
- a folder per identity (ROOT/<identity>/*.jpg|jpeg|png, optional landmarks.csv);
- our synthetic photo set (`python -m game generate --style photo`: manifest.json, identities.npy, points.npy).
Every image is warped to the template with the similarity from its five points, then augmented
(train only). Every rejection names the file that caused it.
"""

from __future__ import annotations

import csv
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
from PIL import Image, ImageOps
from torch.utils.data import Dataset

from datamodules.screenshots import IMAGE_SUFFIXES, NUM_PARAMETERS, is_number, open_screenshot_set
from datamodules.split import load_or_make_split
from game.framing import TEMPLATE, align_to_template

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")  # albumentations would ask PyPI for a newer version on import
import albumentations as A  # noqa: E402

log = logging.getLogger(__name__)

KINDS = ("celeba", "folders", "synthetic")
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
ON_CORRUPT = ("raise", "skip")


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


# ------------------------------------------------------------------------------------- alignment, augmentation


def read_photo(path: Path) -> np.ndarray:
    """Decode a photo as uint8 (H, W, 3) RGB, upright by its EXIF orientation; an error names the file."""
    try:
        with Image.open(path) as image:
            image = ImageOps.exif_transpose(image).convert("RGB")  # decodes fully: truncated files fail here
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: image missing") from None
    except (OSError, SyntaxError, ValueError) as error:  # PIL's errors for corrupt or truncated files
        raise ValueError(f"{path}: cannot decode image ({error})") from None
    return np.asarray(image)


AUGMENT_DEFAULTS = {
    "p": 0.5,  # probability of each enabled transform
    "colour": 0.2,  # brightness, contrast and saturation factors in [1 - c, 1 + c]
    "hue": 0.02,  # hue shift, a fraction of the colour circle
    "blur": 1.0,  # largest Gaussian blur sigma, pixels at the model's input size
    "noise": 0.03,  # largest Gaussian noise std, a fraction of the 0-255 range
    "jpeg": 60,  # lowest JPEG quality (re-encoded at quality in [jpeg, 95])
    "scale": 0.05,  # zoom in [1 - s, 1 + s]
    "rotate": 5.0,  # rotation in [-r, r] degrees
    "shift": 0.03,  # translation in [-t, t] of the side
    "flip": False,  # mirror left-right with probability 0.5 (a mirrored face keeps its identity label)
}


def build_augmentation(settings: dict | bool | None) -> A.Compose | None:
    """The train-time augmentation after alignment; `settings` overrides AUGMENT_DEFAULTS, 0/null disables one."""
    if settings is None or settings is False:
        return None
    settings = {} if settings is True else dict(settings)
    unknown = set(settings) - set(AUGMENT_DEFAULTS)
    if unknown:
        raise ValueError(f"data.source.augment: unknown keys {sorted(unknown)}; known: {sorted(AUGMENT_DEFAULTS)}")
    s = {key: value or 0 for key, value in {**AUGMENT_DEFAULTS, **settings}.items()}  # null = 0 = off
    p, ops = s["p"], []
    if s["scale"] or s["rotate"] or s["shift"]:
        ops.append(
            A.Affine(
                scale=(1 - s["scale"], 1 + s["scale"]),
                rotate=(-s["rotate"], s["rotate"]),
                translate_percent=(-s["shift"], s["shift"]),
                border_mode=cv2.BORDER_REPLICATE,
                p=p,
            )
        )
    if s["flip"]:
        ops.append(A.HorizontalFlip(p=0.5))
    if s["colour"] or s["hue"]:
        c = (1 - s["colour"], 1 + s["colour"])
        ops.append(A.ColorJitter(brightness=c, contrast=c, saturation=c, hue=(-s["hue"], s["hue"]), p=p))
    if s["blur"]:
        ops.append(A.GaussianBlur(blur_limit=0, sigma_limit=(min(0.1, s["blur"]), s["blur"]), p=p))
    if s["noise"]:
        ops.append(A.GaussNoise(std_range=(0.0, s["noise"]), p=p))
    if s["jpeg"]:
        ops.append(A.ImageCompression(quality_range=(int(s["jpeg"]), 95), p=p))
    return A.Compose(ops) if ops else None


class PhotoDataset(Dataset):
    """Aligned (and, for training, augmented) photos of chosen rows of a PhotoSet.

    Items: "image" uint8 (3, S, S), "identity" int, "parameters" float32 (267,) (ground truth of a
    synthetic set, NaN otherwise), "index" (row in the set). A key is a position or (position,
    augmentation seed): the identity sampler passes seeds, so augmentation follows (seed, epoch) too.
    """

    def __init__(
        self, photos: PhotoSet, rows, image_size: int, augment: A.Compose | None = None, on_corrupt: str = "raise"
    ) -> None:
        self.photos = photos
        self.rows = np.asarray(rows, np.int64)
        self.identities = photos.identities[self.rows]  # what the identity sampler groups by
        self.image_size = image_size
        self.augment = augment
        self.on_corrupt = on_corrupt
        self.skipped = 0
        self._no_parameters = torch.full((NUM_PARAMETERS,), float("nan"))

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, key) -> dict:
        position, seed = key if isinstance(key, tuple) else (key, None)
        row = int(self.rows[position])
        image, row = self._read(position, row)
        image = align_to_template(image, self._points(row, image), self.image_size)
        if self.augment is not None:
            if seed is not None:
                self.augment.set_random_seed(int(seed))
            image = self.augment(image=image)["image"]
        parameters = self.photos.parameters
        parameters = torch.from_numpy(parameters[row].copy()) if parameters is not None else self._no_parameters
        return {
            # numpy's transpose copy: torch's multi-threaded uint8 permute is ~100x slower outside workers
            "image": torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1))),
            "identity": int(self.photos.identities[row]),
            "parameters": parameters,
            "index": row,
        }

    def _read(self, position: int, row: int) -> tuple[np.ndarray, int]:
        """The row's photo; with on_corrupt=skip an unreadable one is replaced by another photo of the same person."""
        try:
            return read_photo(self.photos.files[row]), row
        except (ValueError, FileNotFoundError) as error:
            if self.on_corrupt == "raise":
                raise
            self.skipped += 1
            same = np.flatnonzero(self.identities == self.identities[position])
            for other in np.roll(same, -int(np.searchsorted(same, position)) - 1):
                other_row = int(self.rows[other])
                try:
                    image = read_photo(self.photos.files[other_row])
                except (ValueError, FileNotFoundError):
                    continue
                log.warning(
                    "%s; using %s of the same identity instead (%d skipped in this process)",
                    error,
                    self.photos.files[other_row].name,
                    self.skipped,
                )
                return image, other_row
            raise ValueError(f"{error}; no readable photo of identity {self.identities[position]} to use") from None

    def _points(self, row: int, image: np.ndarray) -> np.ndarray:
        """The row's five points; a photo without any is taken as aligned and must be square."""
        if self.photos.points is not None:
            return self.photos.points[row]
        height, width = image.shape[:2]
        if height != width:
            raise ValueError(
                f"{self.photos.files[row]}: {width}x{height} photo without landmarks; photos without "
                f"{LANDMARKS_CSV} must be square and aligned to the template (docs/contracts.md 2)"
            )
        return TEMPLATE * width
