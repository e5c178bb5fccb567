"""The game's neutral head: MediaPipe's face surface completed into a portrait head.

Built deterministically from the game's neutral face (game.face, shipped data): a subdivided face, a skull
lofted from the face oval to the back of the head, a neck, ears, eyeballs and a mouth cavity.
Units follow docs/contracts.md: inter-ocular distance 1, origin between the eyes, x to the
subject's left, y up, z towards the camera.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum
from functools import lru_cache

import numpy as np
from scipy.spatial import cKDTree

from game import topology
from game.face import REGION_SEEDS, REGIONS, neutral_face_landmarks
from game.mesh import (
    PartBuilder,
    boundary_vertices,
    grid_triangles,
    sphere,
    subdivide,
    superellipsoid_radius,
    taubin_smooth,
)


class Part(IntEnum):
    FACE = 0
    SKULL = 1
    NECK = 2
    EYEBALL = 3
    EAR = 4
    MOUTH = 5


@dataclass
class Head:
    """Neutral head mesh with per-vertex part, region, mirror twin and named anchor points."""

    vertices: np.ndarray  # (V, 3) float64
    triangles: np.ndarray  # (F, 3) int32, wound so normals point out of the head
    part: np.ndarray  # (V,) Part
    region: np.ndarray  # (V,) index into REGIONS
    twin: np.ndarray  # (V,) index of the mirror vertex
    anchors: dict = field(default_factory=dict)  # name -> (3,) point
    eyeball_angle: np.ndarray = None  # (V,) angle (rad) from the eyeball's front pole; nan elsewhere

    @property
    def num_vertices(self) -> int:
        return len(self.vertices)


SKULL_CENTRE = np.array([0.0, 0.15, -0.9])
SKULL_AXES = np.array([1.12, 1.72, 1.38])


@lru_cache(maxsize=4)
def build_head(landmarks_key: bytes | None = None) -> Head:
    """The complete neutral head (cached per process)."""
    face = neutral_face_landmarks() if landmarks_key is None else np.frombuffer(landmarks_key).reshape(468, 3)
    triangles = topology.face_triangles().copy()
    normals = np.cross(face[triangles[:, 1]] - face[triangles[:, 0]], face[triangles[:, 2]] - face[triangles[:, 0]])
    if (normals[:, 2] > 0).mean() < 0.5:
        triangles = triangles[:, ::-1].copy()
    face_twin = topology.mirror_map(face)
    vertices, triangles, twin, midpoint_of = subdivide(face, triangles, face_twin)
    contours = [topology.landmark_set(n) for n in ("FACE_OVAL", "LEFT_EYE", "RIGHT_EYE", "LIPS")]
    vertices = taubin_smooth(vertices, triangles, fixed=np.concatenate(contours + [boundary_vertices(triangles)]))
    builder = PartBuilder()
    builder.add(vertices, triangles, Part.FACE)
    anchors = {}

    # Skull: loft each face-oval vertex along the great circle to the back pole of an ellipsoid.
    # The subdivided oval (landmarks and their edge midpoints), so the skull meets the face without cracks.
    oval_landmarks = topology.loop("FACE_OVAL")
    oval = np.array(
        [
            v
            for a, b in zip(oval_landmarks, np.roll(oval_landmarks, -1))
            for v in (a, midpoint_of[tuple(sorted((a, b)))])
        ]
    )
    oval_points = vertices[oval]
    rings = np.linspace(0, 1, 13)[1:] ** 1.3
    back = np.array([0.0, 0.0, -1.0])
    start = oval_points - SKULL_CENTRE
    start_radius = np.linalg.norm(start, axis=1)
    start_dir = start / start_radius[:, None]
    omega = np.arccos(np.clip(start_dir @ back, -1, 1))[:, None]
    skull = []
    for t in rings:
        direction = (np.sin((1 - t) * omega) * start_dir + np.sin(t * omega) * back) / np.sin(omega)
        blend = np.clip(t / 0.6, 0, 1) ** 2 * (3 - 2 * np.clip(t / 0.6, 0, 1))
        radius = (1 - blend) * start_radius + blend * superellipsoid_radius(direction, SKULL_AXES)
        skull.append(SKULL_CENTRE + direction * radius[:, None])
    skull = np.concatenate(skull[:-1] + [[SKULL_CENTRE + back * SKULL_AXES[2]]])
    cols = len(oval)
    ring_rows = len(rings) - 1
    # Grid over [oval ring, skull rings], the oval ring being existing face vertices.
    skull_offset = builder.count
    grid_index = np.concatenate([oval, skull_offset + np.arange(ring_rows * cols)])
    tris = grid_triangles(ring_rows + 1, cols, 0)
    tris = grid_index[tris]
    pole = skull_offset + ring_rows * cols
    last_row = skull_offset + (ring_rows - 1) * cols
    tris = np.concatenate([tris, [(last_row + c, last_row + (c + 1) % cols, pole) for c in range(cols)]])
    builder.add(skull, tris, Part.SKULL, global_indices=True)
    anchors["skull_back"] = SKULL_CENTRE + back * SKULL_AXES[2]
    anchors["skull_top"] = SKULL_CENTRE + np.array([0, SKULL_AXES[1], 0])
    anchors["skull_centre"] = SKULL_CENTRE

    # Neck: an open elliptic cylinder rising into the head from below the frame.
    segments, heights = 28, np.linspace(-3.4, -0.4, 9)
    phi = np.linspace(0, 2 * np.pi, segments, endpoint=False)
    neck_centre = np.array([0.0, 0.0, -1.05])
    ring = np.stack([0.78 * np.sin(phi), np.zeros_like(phi), 0.72 * np.cos(phi)], 1) + neck_centre
    neck = np.concatenate([ring + [0, h, 0] for h in heights])
    neck_tris = grid_triangles(len(heights), segments, 0)[:, ::-1]
    builder.add(neck, neck_tris, Part.NECK)
    anchors["neck"] = neck_centre + [0, -1.6, 0]

    # Eyeballs behind the eye openings; dense rings near the front pole carry the iris and pupil.
    eye_rings = np.concatenate([np.linspace(0.07, 0.62, 10), np.linspace(0.75, 2.8, 5)])
    unit, sphere_tris, angles = sphere(eye_rings, 20)
    eyeball_radius = 0.21
    eyeball_angle = []
    for side, name in ((1, "LEFT_EYE"), (-1, "RIGHT_EYE")):
        opening = face[topology.loop(name)]
        centre = opening.mean(0) - np.array([0, 0.02, eyeball_radius - 0.035])
        anchors[f"eye_{'left' if side > 0 else 'right'}"] = centre
        builder.add(centre + unit * eyeball_radius, sphere_tris, Part.EYEBALL)
        eyeball_angle.append(angles)

    # Ears: flattened ellipsoids on the skull's sides at eye-to-nose height, tilted back.
    ear_unit, ear_tris, _ = sphere(np.linspace(0.25, 2.9, 9), 16)
    ear_shape = ear_unit * np.array([0.34, 0.55, 0.09])  # local: x across, y up, z thickness
    for side in (1, -1):
        root = np.array([side * (SKULL_AXES[0] - 0.06), -0.28, SKULL_CENTRE[2] - 0.05])
        tilt = np.deg2rad(12)
        yaw = np.deg2rad(side * 70)  # ear plane nearly sagittal, opening slightly forward
        ry = np.array([[np.cos(yaw), 0, np.sin(yaw)], [0, 1, 0], [-np.sin(yaw), 0, np.cos(yaw)]])
        rx = np.array([[1, 0, 0], [0, np.cos(tilt), -np.sin(tilt)], [0, np.sin(tilt), np.cos(tilt)]])
        ear = (ear_shape @ (ry @ rx).T) + root + np.array([side * 0.1, 0, 0])
        builder.add(ear, ear_tris if side > 0 else ear_tris[:, ::-1], Part.EAR)  # mirroring flips the winding
        anchors[f"ear_{'left' if side > 0 else 'right'}"] = root

    # Mouth cavity: a dark half-ellipsoid behind the lips, seen when the lips part.
    mouth_centre = (face[13] + face[14]) / 2 - np.array([0, 0, 0.2])
    cavity_unit, cavity_tris, _ = sphere(np.linspace(0.3, 2.8, 6), 16)
    cavity = mouth_centre + cavity_unit * np.array([0.42, 0.14, 0.18])
    builder.add(cavity, cavity_tris[:, ::-1], Part.MOUTH)
    anchors["mouth"] = mouth_centre

    vertices = np.concatenate(builder.vertices)
    part = np.concatenate(builder.part)
    twin = _mirror_twins(vertices, part, twin)
    angle = np.full(len(vertices), np.nan)
    eyeball_vertices = np.flatnonzero(part == Part.EYEBALL)
    angle[eyeball_vertices] = np.concatenate(eyeball_angle)
    head = Head(
        vertices=vertices,
        triangles=np.concatenate(builder.triangles).astype(np.int32),
        part=part.astype(np.int8),
        region=_regions(vertices, part, face, face_twin),
        twin=twin.astype(np.int64),
        anchors=anchors,
        eyeball_angle=angle,
    )
    return head


def _mirror_twins(vertices: np.ndarray, part: np.ndarray, face_twin: np.ndarray) -> np.ndarray:
    """Mirror twin of every vertex: the face's from its topology, other parts' by reflected position."""
    twin = np.arange(len(vertices))
    twin[: len(face_twin)] = face_twin
    for p in np.unique(part):
        if p == Part.FACE:
            continue
        members = np.flatnonzero(part == p)
        _, nearest = cKDTree(vertices[members]).query(vertices[members] * np.array([-1.0, 1.0, 1.0]))
        twin[members] = members[nearest]
    return twin


def _regions(vertices: np.ndarray, part: np.ndarray, face: np.ndarray, twin: np.ndarray) -> np.ndarray:
    """Region of every vertex: nearest region seed on the face (twin: its landmarks' mirror map), else its part's."""
    seeds, labels = [], []
    for name, indices in REGION_SEEDS.items():
        both = np.unique(np.concatenate([indices, twin[indices]]))
        seeds.append(both)
        labels.append(np.full(len(both), REGIONS.index(name)))
    seeds, labels = np.concatenate(seeds), np.concatenate(labels)
    region = np.full(len(vertices), REGIONS.index("head"))
    on_face = part == Part.FACE
    distances = np.linalg.norm(vertices[on_face, None, :] - face[None, seeds, :], axis=-1)
    region[on_face] = labels[distances.argmin(1)]
    region[part == Part.EYEBALL] = REGIONS.index("eyes")
    region[part == Part.EAR] = REGIONS.index("ears")
    region[part == Part.NECK] = REGIONS.index("neck")
    region[part == Part.MOUTH] = REGIONS.index("mouth")
    return region.astype(np.int8)
