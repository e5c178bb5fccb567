"""Source-domain photos as the model sees them (docs/contracts.md 4.3): decoded, aligned to the template, augmented.

The sets themselves (CelebA, a folder per identity, our synthetic photos) and `data.source`:
datamodules/photo_sets.py. Every image is warped to the template with the similarity from its five points, then
augmented (train only). Every rejection names the file that caused it.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import cv2
import numpy as np
import torch
from PIL import Image, ImageOps
from torch.utils.data import Dataset

from datamodules.photo_sets import LANDMARKS_CSV, PhotoSet
from datamodules.screenshots import ScreenshotDataset, load_image
from game.framing import TEMPLATE, align_to_template
from game.parameters import NUM_PARAMETERS

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")  # albumentations would ask PyPI for a newer version on import
import albumentations as A  # noqa: E402

log = logging.getLogger(__name__)


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


class AlignedScreenshotDataset(ScreenshotDataset):
    """(parameters, picture) pairs of a photo-style set read as screenshots (the target side, supervised by its
    known parameters): each picture is aligned to the template by its five points (points.npy), never augmented."""

    def _load(self, index: int) -> np.ndarray:
        """Row `index`'s photo warped to the template at the dataset's size (the set's own when None)."""
        image = load_image(self.screenshots.files[index])
        return align_to_template(image, self.screenshots.points[index], self.image_size or image.shape[0])
