"""The shading model both renderers share: key + fill + ambient light, and smooth vertex normals.

Per pixel, with n the interpolated, renormalised vertex normal turned towards the viewer on faces seen from
behind (two-sided: open borders and consistently wound meshes of either orientation):
    rgb = colour * (ambient + key_color * max(n.k, 0) + fill_color * max(n.f, 0))
          + key_color * specular * gloss * max(n.h, 0) ** shininess   (only where n.k > 0)
    h = normalize(k + v), v = unit vector from the surface to the camera; rgb clamped to [0, 1].
Colours are treated as display values (no gamma handling).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse

DEFAULT_BACKGROUND = (0.5, 0.5, 0.5)


@dataclass(frozen=True)
class Lighting:
    """Key light + fill light + ambient; directions point from the surface towards the light (world space)."""

    key_direction: tuple
    key_color: tuple
    fill_direction: tuple
    fill_color: tuple
    ambient: tuple
    specular: float = 0.25
    shininess: float = 24.0

    @staticmethod
    def studio() -> Lighting:
        """The game's fixed portrait light: soft key from the upper front on the viewer's left, fill from the right."""
        return Lighting(
            key_direction=_unit((-0.45, 0.50, 0.75)),
            key_color=(0.70, 0.70, 0.70),
            fill_direction=_unit((0.60, 0.10, 0.80)),
            fill_color=(0.25, 0.25, 0.25),
            ambient=(0.30, 0.30, 0.30),
        )

    def uniforms(self) -> dict:
        """The shader inputs: unit directions, float tuples."""
        return {
            "key_direction": _unit(self.key_direction),
            "key_color": tuple(float(c) for c in self.key_color),
            "fill_direction": _unit(self.fill_direction),
            "fill_color": tuple(float(c) for c in self.fill_color),
            "ambient": tuple(float(c) for c in self.ambient),
            "specular": float(self.specular),
            "shininess": float(self.shininess),
        }


def _unit(v) -> tuple:
    v = np.asarray(v, dtype=np.float64)
    n = np.linalg.norm(v)
    if v.shape != (3,) or n == 0:
        raise ValueError(f"Lighting: a direction must be a non-zero 3-vector, got {tuple(v.ravel())}")
    return tuple(float(x) for x in v / n)


def vertex_incidence(triangles: np.ndarray, num_vertices: int) -> scipy.sparse.csr_matrix:
    """Sparse (V, F) matrix, 1 where vertex v is a corner of face f: per-vertex sums of face values in one product."""
    f = len(triangles)
    rows = triangles.reshape(-1)
    cols = np.repeat(np.arange(f), 3)
    inc = scipy.sparse.csr_matrix((np.ones(3 * f, np.float32), (rows, cols)), shape=(num_vertices, f))
    inc.sum_duplicates()  # a degenerate face that repeats a vertex counts once per corner, as np.add.at would
    return inc


def vertex_normals(vertices: np.ndarray, triangles: np.ndarray, incidence: scipy.sparse.csr_matrix) -> np.ndarray:
    """Unit smooth normals (V, 3) float32: area-weighted sums of face normals (zero for unused vertices)."""
    a, b, c = vertices.take(triangles.T, axis=0)  # corners, each (F, 3); take is 5x faster than fancy indexing
    face = np.cross(b - a, c - a)  # (F, 3), |.| = 2 area
    normals = np.asarray(incidence @ face, dtype=np.float32)
    length = np.sqrt(np.einsum("ij,ij->i", normals, normals))
    normals /= np.maximum(length, 1e-20)[:, None]
    return normals
