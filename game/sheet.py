"""Contact sheets: a grid of a dataset's first images, for people to look at."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from game.dataset import image_path, read_manifest


def contact_sheet(root: str | Path, out: str | Path, count: int = 16, columns: int = 4, gap: int = 4) -> Path:
    """Write a PNG grid of the first `count` images of a screenshot dataset; returns its path."""
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
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(out), sheet)
    return out
