"""Tiny fake screenshot sets on disk, in the exact layouts of docs/contracts.md section 4."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
from PIL import Image

NUM_PARAMETERS = 267


def fake_parameters(count: int, seed: int = 0) -> np.ndarray:
    """Parameters drawn like the game's prior, U[-2.5, 2.5]^267, float32 (count, 267)."""
    return np.random.default_rng(seed).uniform(-2.5, 2.5, (count, NUM_PARAMETERS)).astype(np.float32)


def fake_render(parameters: np.ndarray, size: int) -> np.ndarray:
    """A stand-in engine: a disc whose colour, centre and radius follow the first parameters; uint8 (S, S, 3)."""
    p = (parameters[:8] + 2.5) / 5.0  # [0, 1]
    y, x = np.mgrid[0:size, 0:size] / size
    inside = (x - 0.3 - 0.4 * p[3]) ** 2 + (y - 0.3 - 0.4 * p[4]) ** 2 < (0.1 + 0.2 * p[5]) ** 2
    image = np.empty((size, size, 3), np.float32)
    image[:] = 0.2 + 0.3 * p[6]  # background
    image[inside] = p[:3]
    return (image * 255).astype(np.uint8)


def write_screenshot_set(
    root: str | Path,
    count: int = 16,
    size: int = 64,
    style: str = "game",
    complete: bool = True,
    seed: int = 0,
    parameters: np.ndarray | None = None,
) -> Path:
    """Write a format-v1 set (manifest.json, parameters.npy, images/{i:07d}.png|jpg) and return its root."""
    root = Path(root)
    (root / "images").mkdir(parents=True, exist_ok=True)
    parameters = fake_parameters(count, seed) if parameters is None else parameters
    image_format = "png" if style == "game" else "jpg"
    for i, row in enumerate(np.nan_to_num(np.clip(parameters, -2.5, 2.5))):
        image = Image.fromarray(fake_render(row, size))
        image.save(root / "images" / f"{i:07d}.{image_format}", **({"quality": 95} if image_format == "jpg" else {}))
    np.save(root / "parameters.npy", parameters)
    manifest = {
        "format_version": 1,
        "kind": "likeness.screenshots",
        "style": style,
        "size": size,
        "count": count,
        "seed": seed,
        "image_format": image_format,
        "num_parameters": NUM_PARAMETERS,
        "parameter_range": [-2.5, 2.5],
        "parameter_table_version": "fake-table-v1",
        "prior": "uniform",
        "complete": complete,
    }
    (root / "manifest.json").write_text(json.dumps(manifest, indent=2))
    return root


def write_game_folder(root: str | Path, count: int = 8, size: int = 48, header: bool = True, seed: int = 0) -> Path:
    """Write an any-game folder (images/*.png + parameters.csv with filename,p0..p266) and return its root."""
    root = Path(root)
    (root / "images").mkdir(parents=True, exist_ok=True)
    parameters = fake_parameters(count, seed)
    with (root / "parameters.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        if header:
            writer.writerow(["filename"] + [f"p{j}" for j in range(NUM_PARAMETERS)])
        for i, row in enumerate(parameters):
            name = f"face_{i:03d}.png"
            Image.fromarray(fake_render(row, size)).save(root / "images" / name)
            writer.writerow([name] + [repr(float(v)) for v in row])
    return root
