"""Game-screenshot sets on disk (docs/contracts.md section 4): open, validate, and read as pairs.

Two layouts are read:
- format v1, written by `python -m game generate`: manifest.json, parameters.npy, images/{i:07d}.{ext};
- any game's folder (section 4.1): images/*.{png,jpg,jpeg} plus parameters.csv (filename,p0..p266).
Every check names the file (and row) that broke it, so a bad set is fixed at its source.
"""

from __future__ import annotations

import csv
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, get_args

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from game.manifest import read_manifest
from game.parameters import NUM_PARAMETERS

log = logging.getLogger(__name__)

OnCorrupt = Literal["raise", "skip"]  # as data.source.on_corrupt (datamodules/photo_sets.py)
ON_CORRUPT: tuple[str, ...] = get_args(OnCorrupt)
PARAMETER_RANGE = (-2.5, 2.5)
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg"}
_RANGE_SLACK = 1e-6  # float32 rounding at the bounds


@dataclass(frozen=True)
class ScreenshotSet:
    """A validated screenshot set: row i of `parameters` was rendered into `files[i]`."""

    root: Path
    files: list[Path]
    parameters: np.ndarray  # float32 (N, 267)
    size: int | None  # side in pixels from the manifest; None for a plain folder
    parameter_table_version: str | None
    style: str | None
    points: np.ndarray | None = None  # float32 (N, 5, 2) of a photo-style set: where its five template points are

    def __len__(self) -> int:
        return len(self.files)


def open_screenshot_set(root: str | Path, on_corrupt: str = "raise") -> ScreenshotSet:
    """Open and validate a screenshot set in format v1 or the any-game folder layout.

    A missing image is an error, or with `on_corrupt="skip"` a warning with the count (its row stays, so the
    split keeps its size; ScreenshotDataset replaces it when read)."""
    if on_corrupt not in ON_CORRUPT:
        raise ValueError(f"data.on_corrupt must be one of {ON_CORRUPT}, got {on_corrupt!r}")
    root = Path(root)
    if (root / "manifest.json").is_file():
        return _open_format_v1(root, on_corrupt)
    if (root / "parameters.csv").is_file():
        return _open_game_folder(root, on_corrupt)
    raise FileNotFoundError(
        f"{root}: no manifest.json (format v1, made by `python -m game generate --out {root} ...`) "
        f"and no parameters.csv (any game's folder, docs/contracts.md 4.1)"
    )


def _open_format_v1(root: Path, on_corrupt: str = "raise") -> ScreenshotSet:
    manifest_path = root / "manifest.json"
    manifest = read_manifest(root)  # kind, format_version and the types of the fields, checked
    if manifest.get("complete") is not True:
        arguments = " ".join(f"--{key} {manifest.get(key)}" for key in ("count", "size", "style", "seed"))
        if manifest.get("style") == "photo":
            arguments += f" --renders-per-identity {manifest.get('renders_per_identity')}"
        raise ValueError(
            f"{manifest_path}: the set is incomplete (generation is running or was interrupted). Resume it "
            f"with the same arguments: `python -m game generate --out {root} {arguments}`; it renders only "
            f"the missing files."
        )
    from game.engine import ENGINE_VERSION  # here: reading a folder must not need the renderer's imports

    if manifest.get("engine_version", ENGINE_VERSION) != ENGINE_VERSION:
        raise ValueError(
            f"{manifest_path}: rendered by game engine version {manifest.get('engine_version')}, this checkout "
            f"is version {ENGINE_VERSION}: its pictures differ for the same parameters. Render the set again "
            f"(delete it and rerun, or use another --out)."
        )
    if manifest.get("num_parameters") != NUM_PARAMETERS:
        raise ValueError(
            f"{manifest_path}: num_parameters is {manifest.get('num_parameters')}, expected {NUM_PARAMETERS}"
        )
    params_path = root / "parameters.npy"
    parameters = _load_parameters(params_path)
    count = manifest["count"]
    if parameters.shape != (count, NUM_PARAMETERS):
        raise ValueError(
            f"{params_path}: shape {parameters.shape}, expected ({count}, {NUM_PARAMETERS}) "
            f"(count from manifest.json, {NUM_PARAMETERS} parameters per row)"
        )
    check_parameters(parameters, lambda i: f"{params_path} row {i}")
    suffix = manifest.get("image_format", "png")
    files = [root / "images" / f"{i:07d}.{suffix}" for i in range(count)]
    _check_files_exist(files, on_corrupt)
    points = None
    if manifest.get("style") == "photo":  # posed, shifted and scaled: its five points align it to the template
        points = _load_parameters(root / "points.npy")
        if points.shape != (count, 5, 2):
            raise ValueError(f"{root / 'points.npy'}: shape {points.shape}, expected ({count}, 5, 2)")
        points = points.astype(np.float32, copy=False)
    return ScreenshotSet(
        root=root,
        files=files,
        parameters=parameters.astype(np.float32, copy=False),
        size=manifest.get("size"),
        parameter_table_version=manifest.get("parameter_table_version"),
        style=manifest.get("style"),
        points=points,
    )


def _load_parameters(path: Path) -> np.ndarray:
    """parameters.npy as an array of numbers, else an error naming it."""
    if not path.is_file():
        raise FileNotFoundError(f"{path}: missing (`python -m game generate` writes it beside manifest.json)")
    try:
        parameters = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as error:
        raise ValueError(f"{path}: not a numpy .npy array ({error})") from None
    if not isinstance(parameters, np.ndarray) or parameters.dtype.kind not in "biuf":
        raise ValueError(f"{path}: expected an array of numbers, got dtype {getattr(parameters, 'dtype', None)}")
    return parameters


def _open_game_folder(root: Path, on_corrupt: str = "raise") -> ScreenshotSet:
    csv_path = root / "parameters.csv"
    files, rows, lines = [], [], []
    with csv_path.open(newline="") as handle:
        for line_number, fields in enumerate(csv.reader(handle), start=1):
            if not fields or (line_number == 1 and not is_number(fields[-1])):
                continue  # blank line, or the optional header row
            where = f"{csv_path} line {line_number}"
            if len(fields) - 1 != NUM_PARAMETERS:
                raise ValueError(f"{where}: {len(fields) - 1} parameters, expected {NUM_PARAMETERS}")
            try:
                rows.append([float(value) for value in fields[1:]])
            except ValueError as error:
                raise ValueError(f"{where}: a parameter is not a number ({error})") from None
            path = root / "images" / fields[0]
            if path.suffix.lower() not in IMAGE_SUFFIXES:
                raise ValueError(f"{where}: {fields[0]} is not a .png, .jpg or .jpeg file")
            files.append(path)
            lines.append(line_number)
    if not rows:
        raise ValueError(f"{csv_path}: no parameter rows")
    parameters = np.asarray(rows, dtype=np.float32)
    check_parameters(parameters, lambda i: f"{csv_path} line {lines[i]} ({files[i].name})")
    _check_files_exist(files, on_corrupt)
    return ScreenshotSet(root, files, parameters, size=None, parameter_table_version=None, style=None)


def check_parameters(parameters: np.ndarray, describe_row) -> None:
    """Raise ValueError naming the first row that is not finite or leaves [-2.5, 2.5]."""
    finite = np.isfinite(parameters).all(axis=1)
    if not finite.all():
        row = int(np.argmin(finite))
        column = int(np.argmin(np.isfinite(parameters[row])))
        raise ValueError(f"{describe_row(row)}: parameter {column} is {parameters[row, column]} (not finite)")
    low, high = PARAMETER_RANGE
    outside = (parameters < low - _RANGE_SLACK) | (parameters > high + _RANGE_SLACK)
    if outside.any():
        row, column = (int(i) for i in np.argwhere(outside)[0])
        raise ValueError(
            f"{describe_row(row)}: parameter {column} is {parameters[row, column]:.6g}, outside [{low}, {high}]"
        )


def _check_files_exist(files: list[Path], on_corrupt: str = "raise") -> None:
    missing = [path for path in files if not path.is_file()]
    if missing:
        message = f"{missing[0]}: image missing ({len(missing)} of {len(files)} images missing)"
        if on_corrupt == "raise":
            raise FileNotFoundError(message)
        log.warning("%s; each is replaced by another row when read (on_corrupt: skip)", message)


def is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def load_image(path: Path, size: int | None = None) -> np.ndarray:
    """Read an image file as uint8 (S, S, 3) RGB, resized to `size` if given and different."""
    try:
        with Image.open(path) as image:
            image = image.convert("RGB")  # decodes fully, so truncated files fail here
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: image missing") from None
    except (OSError, SyntaxError, ValueError) as error:  # PIL's errors for corrupt or truncated files
        raise ValueError(f"{path}: cannot decode image ({error})") from None
    if image.width != image.height:
        raise ValueError(f"{path}: image is {image.width}x{image.height}, expected a square screenshot")
    if size is not None and image.width != size:
        # PIL scales the bicubic filter's support with the factor, so downscaling is antialiased.
        image = image.resize((size, size), Image.Resampling.BICUBIC)
    return np.array(image)  # a writable copy: torch.from_numpy warns on read-only arrays


class ScreenshotDataset(Dataset):
    """(parameters, screenshot) pairs of the chosen rows of a set.

    Items are dicts: "parameters" float32 (267,), "image" uint8 (3, S, S), "index" (row in the set).
    Images stay uint8 until they reach the device (4x less worker-to-trainer traffic); the
    DataModule turns them into float [0, 1] there (docs/contracts.md section 1).
    """

    def __init__(
        self, screenshots: ScreenshotSet, indices, image_size: int | None = None, on_corrupt: str = "raise"
    ) -> None:
        if on_corrupt not in ON_CORRUPT:
            raise ValueError(f"data.on_corrupt must be one of {ON_CORRUPT}, got {on_corrupt!r}")
        self.screenshots = screenshots
        self.indices = [int(i) for i in indices]
        self.image_size = image_size
        self.on_corrupt = on_corrupt
        self.skipped = 0  # unreadable images met in this process (each worker counts its own)

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, item: int) -> dict:
        index, image = self._read(item)
        return {
            "parameters": torch.from_numpy(self.screenshots.parameters[index].copy()),
            # numpy's transpose copy: torch's permute+contiguous costs ~100x more on a 2-thread CPU.
            "image": torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1))),
            "index": index,
        }

    def _load(self, index: int) -> np.ndarray:
        """Row `index`'s image, uint8 (S, S, 3)."""
        return load_image(self.screenshots.files[index], self.image_size)

    def _read(self, item: int) -> tuple[int, np.ndarray]:
        """(row, image) of the item; with on_corrupt="skip" an unreadable image is replaced by the next readable row
        of this dataset (its own parameters with it), logged with its name and the count."""
        index = self.indices[item]
        try:
            return index, self._load(index)
        except (ValueError, FileNotFoundError) as error:
            if self.on_corrupt == "raise":
                raise
            self.skipped += 1
            for step in range(1, len(self.indices)):
                other = self.indices[(item + step) % len(self.indices)]
                try:
                    image = self._load(other)
                except (ValueError, FileNotFoundError):
                    continue
                log.warning(
                    "%s; using %s instead (%d skipped in this process; `python -m game generate` with the "
                    "set's arguments re-renders damaged images)",
                    error,
                    self.screenshots.files[other].name,
                    self.skipped,
                )
                return other, image
            raise ValueError(f"{error}; no readable image left in this dataset to use instead") from None
