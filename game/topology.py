"""MediaPipe's 468-point face topology: triangles, named index sets and the left-right mirror map.

The connection lists are game data, `game/data/face_mesh_connections.csv`: the FACEMESH_* lists of
mediapipe's `face_mesh_connections.py` (Apache-2.0; game/data/NOTICE.md), remade by
`python -m models build-assets`.
"""

from __future__ import annotations

import csv
from collections import defaultdict
from functools import lru_cache
from pathlib import Path

import numpy as np
from scipy.optimize import linear_sum_assignment

NUM_LANDMARKS = 468
CONNECTIONS_FILE = Path(__file__).parent / "data" / "face_mesh_connections.csv"


@lru_cache(maxsize=1)
def connection_sets() -> dict[str, np.ndarray]:
    """Every FACEMESH_* edge list as a sorted (E, 2) int array, keyed by its suffix ('LIPS', 'NOSE', ...)."""
    edges = defaultdict(list)
    with open(CONNECTIONS_FILE, newline="") as f:
        for row in csv.DictReader(f):
            edges[row["set"]].append((int(row["a"]), int(row["b"])))
    if "TESSELATION" not in edges:
        raise ValueError(f"{CONNECTIONS_FILE}: no TESSELATION rows; expected `set,a,b` rows of MediaPipe's face mesh")
    return {name: np.array(pairs, dtype=np.int64) for name, pairs in edges.items()}


def landmark_set(name: str) -> np.ndarray:
    """Sorted unique landmark indices of one connection set, e.g. landmark_set('LEFT_EYE')."""
    return np.unique(connection_sets()[name])


def loop(name: str) -> np.ndarray:
    """The landmarks of a closed contour set ('LEFT_EYE', 'FACE_OVAL', ...) in walking order."""
    edges = connection_sets()[name]
    neighbours = defaultdict(list)
    for a, b in edges:
        neighbours[a].append(b)
        neighbours[b].append(a)
    start = int(edges[0, 0])
    order, previous = [start], None
    while True:
        current = order[-1]
        step = [n for n in neighbours[current] if n != previous]
        if not step or step[0] == start:
            break
        previous = current
        order.append(int(step[0]))
    return np.array(order)


@lru_cache(maxsize=1)
def face_triangles() -> np.ndarray:
    """(F, 3) triangles of the tessellation (its 3-cliques), consistently wound so normals face the camera."""
    edges = connection_sets()["TESSELATION"]
    neighbours = defaultdict(set)
    for a, b in edges:
        neighbours[int(a)].add(int(b))
        neighbours[int(b)].add(int(a))
    triangles = sorted(
        {
            tuple(sorted((a, b, c)))
            for a in neighbours
            for b in neighbours[a]
            if b > a
            for c in neighbours[a] & neighbours[b]
            if c > b
        }
    )
    return _orient(np.array(triangles, dtype=np.int64))


def _orient(triangles: np.ndarray) -> np.ndarray:
    """Propagate one winding across shared edges (breadth first), so neighbouring normals agree."""
    by_edge = defaultdict(list)
    for t, tri in enumerate(triangles):
        for k in range(3):
            by_edge[frozenset((tri[k], tri[(k + 1) % 3]))].append(t)
    oriented = triangles.copy()
    seen = np.zeros(len(triangles), bool)
    for seed in range(len(triangles)):
        if seen[seed]:
            continue
        seen[seed], queue = True, [seed]
        while queue:
            t = queue.pop()
            tri = oriented[t]
            for k in range(3):
                a, b = tri[k], tri[(k + 1) % 3]
                for u in by_edge[frozenset((a, b))]:
                    if seen[u]:
                        continue
                    other = list(oriented[u])
                    i = other.index(a)
                    # A consistent neighbour walks the shared edge the other way (b -> a).
                    if other[(i + 1) % 3] == b:
                        oriented[u] = oriented[u][::-1]
                    seen[u] = True
                    queue.append(u)
    return oriented


def mirror_map(points: np.ndarray, iterations: int = 4) -> np.ndarray:
    """Index of each landmark's left-right twin, found by matching the cloud to its own reflection.

    points: (468, 3) landmarks of any roughly frontal face. The reflection plane is refined by
    Procrustes between the cloud and its matched reflection, so a turned head still pairs correctly.
    """
    centred = points - points.mean(0)
    # Initial plane: perpendicular to the eye-corner axis (outer corners 33 and 263).
    axis = centred[263] - centred[33]
    axis /= np.linalg.norm(axis)
    reflect = np.eye(3) - 2 * np.outer(axis, axis)
    for _ in range(iterations):
        reflected = centred @ reflect.T
        cost = ((centred[:, None, :] - reflected[None, :, :]) ** 2).sum(-1)
        _, twin = linear_sum_assignment(cost)
        # Best reflection R with det -1 mapping centred[twin] onto centred.
        u, _, vt = np.linalg.svd(centred[twin].T @ centred)
        rotation = (u @ vt).T
        if np.linalg.det(rotation) > 0:
            u[:, -1] *= -1
            rotation = (u @ vt).T
        reflect = rotation
    return twin
