"""The game's face data, regenerated from the weight cache: MediaPipe's topology and the neutral face.

The game ships both under game/data/ (game/data/NOTICE.md says where they came from) and never reads the
cache; this module is how a maintainer remakes them (`python -m models build-assets --out DIR`, then compare
and copy), e.g. after changing the landmark network's port or the symmetrisation in game.face.landmarks_to_world.
"""

from __future__ import annotations

import ast
import csv
from pathlib import Path

import numpy as np

from game.face import NEUTRAL_FACE_FILE, landmarks_to_world
from game.topology import CONNECTIONS_FILE
from models.face_mesh import astronaut_landmarks
from models.weights import mediapipe_asset


def wheel_connection_sets(path: str | Path | None = None) -> dict[str, list[tuple[int, int]]]:
    """Every literal FACEMESH_* edge list of mediapipe's face_mesh_connections.py, sorted, keyed by its suffix.

    Read as data (ast.literal_eval), never imported; unions of the lists (CONTOURS, IRISES) are derived data.
    """
    path = Path(path) if path else mediapipe_asset("face_mesh_connections.py")
    sets = {}
    for node in ast.parse(path.read_text()).body:
        # Only the literal `NAME = frozenset([...])` assignments.
        if not (isinstance(node, ast.Assign) and isinstance(node.value, ast.Call) and node.value.args):
            continue
        arg = node.value.args[0]
        if isinstance(arg, ast.List):
            name = node.targets[0].id.removeprefix("FACEMESH_")
            sets[name] = sorted(ast.literal_eval(arg))
    if "TESSELATION" not in sets:
        raise ValueError(f"{path}: no FACEMESH_TESSELATION list found; is this mediapipe's face_mesh_connections.py?")
    return sets


def write_connections(sets: dict[str, list[tuple[int, int]]], out: str | Path) -> Path:
    """The edge lists as CSV, one `set,a,b` row per edge, in the order given (what game.topology reads)."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "w", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(["set", "a", "b"])
        for name, edges in sets.items():
            writer.writerows([name, a, b] for a, b in edges)
    return out


def neutral_face() -> np.ndarray:
    """(468, 3) float64 symmetric neutral face in world units: the landmark net on skimage's astronaut."""
    return landmarks_to_world(astronaut_landmarks())


def build_game_assets(out: str | Path) -> dict[str, Path]:
    """Write the topology and then the neutral face (which needs that topology) into the folder `out`."""
    out = Path(out)
    connections = write_connections(wheel_connection_sets(), out / CONNECTIONS_FILE.name)
    # landmarks_to_world reads the game's shipped topology: check it is the one just written.
    if (
        connections.resolve() != CONNECTIONS_FILE.resolve()
        and connections.read_bytes() != CONNECTIONS_FILE.read_bytes()
    ):
        raise ValueError(f"{connections} differs from the game's {CONNECTIONS_FILE}; copy it there first, then rerun")
    face = out / NEUTRAL_FACE_FILE.name
    with open(face, "wb") as f:
        np.save(f, neutral_face())
    return {"connections": connections, "neutral_face": face}
