"""Contact sheets: grids of a dataset's first images, and panels side by side, for people to look at."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from game.dataset import image_path, read_manifest

LABEL_HEIGHT = 28


def grid(root: str | Path, count: int = 16, columns: int = 4, gap: int = 4) -> np.ndarray:
    """A BGR grid of the first `count` images of a screenshot dataset, `columns` wide, on white."""
    manifest = read_manifest(Path(root))
    count = min(count, manifest["count"])
    size = manifest["size"]
    rows = -(-count // columns)
    sheet = np.full((rows * (size + gap) + gap, columns * (size + gap) + gap, 3), 255, np.uint8)
    for i in range(count):
        path = image_path(Path(root), i, manifest["image_format"])
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is None:
            raise ValueError(f"{path}: missing or unreadable image")
        r, c = divmod(i, columns)
        sheet[
            gap + r * (size + gap) : gap + r * (size + gap) + size,
            gap + c * (size + gap) : gap + c * (size + gap) + size,
        ] = image
    return sheet


def side_by_side(panels: list[np.ndarray], labels: list[str], gap: int = 12) -> np.ndarray:
    """Panels (BGR, any sizes) in a row, each under its label, on white."""
    height = max(p.shape[0] for p in panels) + LABEL_HEIGHT
    width = sum(p.shape[1] for p in panels) + gap * (len(panels) - 1)
    sheet = np.full((height, width, 3), 255, np.uint8)
    x = 0
    for panel, label in zip(panels, labels):
        cv2.putText(
            sheet, label, (x + 6, LABEL_HEIGHT - 9), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (40, 40, 40), 1, cv2.LINE_AA
        )
        sheet[LABEL_HEIGHT : LABEL_HEIGHT + panel.shape[0], x : x + panel.shape[1]] = panel
        x += panel.shape[1] + gap
    return sheet


def write_png(image: np.ndarray, out: str | Path, colours: int | None = None) -> Path:
    """Write a BGR image as PNG (folders made as needed); with `colours`, as an adaptive palette of that many
    colours, dithered (a third of the size, for pictures kept in git); returns its path."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if colours:
        from PIL import Image

        Image.fromarray(image[..., ::-1]).quantize(colours, dither=Image.Dither.FLOYDSTEINBERG).save(out, optimize=True)
    elif not cv2.imwrite(str(out), image):
        raise OSError(f"{out}: could not write the PNG")
    return out


def write_jpeg(image: np.ndarray, out: str | Path, quality: int) -> Path:
    """Write a BGR image as JPEG (folders made as needed); returns its path."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(out), image, [cv2.IMWRITE_JPEG_QUALITY, int(quality)]):
        raise OSError(f"{out}: could not write the JPEG")
    return out


def contact_sheet(root: str | Path, out: str | Path, count: int = 16, columns: int = 4, gap: int = 4) -> Path:
    """Write a PNG grid of the first `count` images of a screenshot dataset; returns its path."""
    return write_png(grid(root, count, columns, gap), out)
