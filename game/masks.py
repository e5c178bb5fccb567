"""Per-vertex mask helpers shared by the appearance and the hair-like parts: bumps, polyline distances, polygons."""

from __future__ import annotations

import numpy as np


def smoothstep(x):
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3 - 2 * x)


def bump(points: np.ndarray, centres: np.ndarray, radius: float) -> np.ndarray:
    """Smooth blob around the nearest centre, exactly 0 beyond `radius` (so a slider's region is sharp)."""
    d2 = ((points[:, None, :] - centres[None]) ** 2).sum(-1).min(1)
    return np.clip(1 - d2 / radius**2, 0, 1) ** 2


def polyline_distance(points: np.ndarray, polyline: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distance from each point to a polyline, and the arc-length fraction (0..1) of the nearest spot."""
    a, b = polyline[:-1], polyline[1:]
    ab = b - a
    t = np.clip(((points[:, None] - a[None]) * ab[None]).sum(-1) / (ab**2).sum(-1)[None], 0, 1)
    nearest = a[None] + t[..., None] * ab[None]
    d = np.linalg.norm(points[:, None] - nearest, axis=-1)
    segment = d.argmin(1)
    lengths = np.linalg.norm(ab, axis=1)
    cumulative = np.concatenate([[0], np.cumsum(lengths)])
    along = (cumulative[segment] + t[np.arange(len(points)), segment] * lengths[segment]) / cumulative[-1]
    return d.min(1), along


def inside_polygon_2d(points: np.ndarray, polygon: np.ndarray) -> np.ndarray:
    """Even-odd rule on (x, y)."""
    x, y = points[:, 0], points[:, 1]
    inside = np.zeros(len(points), bool)
    px, py = polygon[:, 0], polygon[:, 1]
    for i in range(len(polygon)):
        j = i - 1
        crosses = ((py[i] > y) != (py[j] > y)) & (x < (px[j] - px[i]) * (y - py[i]) / (py[j] - py[i] + 1e-12) + px[i])
        inside ^= crosses
    return inside
