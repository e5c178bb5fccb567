"""MediaPipe's 468-point face topology: triangles, named index sets and the left-right mirror map.

The connection lists come from `face_mesh_connections.py` of the mediapipe wheel in the weight cache
(Apache-2.0); we read them as data (ast.literal_eval), never import or commit them.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from functools import lru_cache

import numpy as np
from scipy.optimize import linear_sum_assignment

from models.weights import mediapipe_asset

NUM_LANDMARKS = 468


@lru_cache(maxsize=1)
def connection_sets() -> dict[str, np.ndarray]:
    """Every FACEMESH_* edge list of the wheel as an (E, 2) int array, keyed by its suffix ('LIPS', 'NOSE', ...)."""
    path = mediapipe_asset("face_mesh_connections.py")
    sets = {}
    for node in ast.parse(path.read_text()).body:
        # Only the literal `NAME = frozenset([...])` assignments; unions of them are derived data.
        if not (isinstance(node, ast.Assign) and isinstance(node.value, ast.Call) and node.value.args):
            continue
        arg = node.value.args[0]
        if isinstance(arg, ast.List):
            name = node.targets[0].id.removeprefix("FACEMESH_")
            sets[name] = np.array(sorted(ast.literal_eval(arg)), dtype=np.int64)
    if "TESSELATION" not in sets:
        raise ValueError(f"{path}: no FACEMESH_TESSELATION list found; is this mediapipe's face_mesh_connections.py?")
    return sets


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
