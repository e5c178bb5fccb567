"""Mesh building blocks for the head: subdivision, borders, smoothing, grids, spheres and a part builder."""

from __future__ import annotations

import numpy as np
import scipy.sparse
from scipy.spatial import cKDTree


def subdivide(vertices: np.ndarray, triangles: np.ndarray, twin: np.ndarray):
    """One midpoint subdivision (4 triangles per triangle); original vertices keep their indices."""
    edges = np.sort(np.concatenate([triangles[:, [0, 1]], triangles[:, [1, 2]], triangles[:, [2, 0]]]), axis=1)
    unique, inverse = np.unique(edges, axis=0, return_inverse=True)
    mid = len(vertices) + inverse.reshape(3, -1).T  # (F, 3) midpoints of edges 01, 12, 20
    new_vertices = np.concatenate([vertices, vertices[unique].mean(1)])
    a, b, c = triangles.T
    ab, bc, ca = mid.T
    new_triangles = np.concatenate([np.stack(t, 1) for t in ((a, ab, ca), (ab, b, bc), (ca, bc, c), (ab, bc, ca))])
    # The twin of an edge midpoint is the midpoint nearest its reflection (the tessellation is not
    # perfectly symmetric, so a few mirrored edges do not exist).
    midpoints = new_vertices[len(vertices) :]
    _, nearest = cKDTree(midpoints).query(midpoints * np.array([-1.0, 1.0, 1.0]))
    new_twin = np.concatenate([twin, len(vertices) + nearest])
    midpoint_of = {tuple(e): len(vertices) + i for i, e in enumerate(unique)}
    return new_vertices, new_triangles, new_twin, midpoint_of


def boundary_vertices(triangles: np.ndarray) -> np.ndarray:
    """Vertices on edges used by only one triangle (open borders: oval, eye and mouth openings)."""
    edges = np.sort(np.concatenate([triangles[:, [0, 1]], triangles[:, [1, 2]], triangles[:, [2, 0]]]), axis=1)
    unique, counts = np.unique(edges, axis=0, return_counts=True)
    return np.unique(unique[counts == 1])


def superellipsoid_radius(directions: np.ndarray, semi_axes: np.ndarray, power: float = 2.6) -> np.ndarray:
    """Radius of a superellipsoid along unit directions; power > 2 gives a rounder, less egg-shaped crown."""
    return 1.0 / (np.abs(directions / semi_axes) ** power).sum(-1) ** (1 / power)


def taubin_smooth(vertices: np.ndarray, triangles: np.ndarray, fixed: np.ndarray, iterations: int = 4) -> np.ndarray:
    """Remove the landmark net's small depth noise without shrinking the face (Taubin lambda/mu smoothing)."""
    n = len(vertices)
    rows = np.concatenate([triangles[:, i] for i in (0, 1, 2, 1, 2, 0)])
    cols = np.concatenate([triangles[:, i] for i in (1, 2, 0, 0, 1, 2)])
    adjacency = scipy.sparse.coo_matrix((np.ones(len(rows)), (rows, cols)), shape=(n, n)).tocsr()
    adjacency.data[:] = 1.0
    degree = np.asarray(adjacency.sum(1)).ravel()
    out = vertices.copy()
    for _ in range(iterations):
        for factor in (0.5, -0.53):
            laplacian = adjacency @ out / degree[:, None] - out
            laplacian[fixed] = 0
            out = out + factor * laplacian
    return out


def grid_triangles(rows: int, cols: int, offset: int, closed: bool = True) -> np.ndarray:
    """Triangles of a rows x cols vertex grid (row-major), wrapping around the columns when closed."""
    tris = []
    last = cols if closed else cols - 1
    for r in range(rows - 1):
        for c in range(last):
            a, b = r * cols + c, r * cols + (c + 1) % cols
            tris += [(a, b, a + cols), (b, b + cols, a + cols)]
    return np.array(tris, dtype=np.int64) + offset


def sphere(rings: np.ndarray, segments: int):
    """Unit sphere around +z: ring angles `rings` (rad from the +z pole, excluding poles) + both poles."""
    phi = np.linspace(0, 2 * np.pi, segments, endpoint=False)
    theta = rings[:, None]
    grid = np.stack([np.sin(theta) * np.cos(phi), np.sin(theta) * np.sin(phi), np.cos(theta) * np.ones_like(phi)], -1)
    points = np.concatenate([[[0, 0, 1]], grid.reshape(-1, 3), [[0, 0, -1]]])
    angles = np.concatenate([[0.0], np.repeat(rings, segments), [np.pi]])
    n = len(rings)
    tris = [(0, 1 + (c + 1) % segments, 1 + c) for c in range(segments)]
    tris += list(map(tuple, grid_triangles(n, segments, 1)[:, ::-1]))
    last = 1 + n * segments
    tris += [(last, 1 + (n - 1) * segments + c, 1 + (n - 1) * segments + (c + 1) % segments) for c in range(segments)]
    return points, np.array(tris, dtype=np.int64), angles


class PartBuilder:
    """Accumulates mesh parts into one vertex array."""

    def __init__(self):
        self.vertices, self.triangles, self.part = [], [], []
        self.count = 0

    def add(self, vertices, triangles, part, global_indices: bool = False) -> int:
        """Append a part; its triangles index its own vertices, or the whole mesh with `global_indices`."""
        offset = self.count
        self.vertices.append(np.asarray(vertices, float))
        self.triangles.append(np.asarray(triangles) + (0 if global_indices else offset))
        self.part.append(np.full(len(vertices), int(part)))
        self.count += len(vertices)
        return offset
