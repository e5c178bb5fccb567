"""The game's neutral head: MediaPipe's face surface completed into a portrait head.

Built deterministically from one cached file, the 468 neutral face landmarks
(`game/neutral_face-v1.npy`, made by `python -m game build-assets` from the landmark network on a
photo that scikit-image ships). Everything else is generated here: a subdivided face, a skull
lofted from the face oval to the back of the head, a neck, ears, eyeballs and a mouth cavity.
Units follow docs/contracts.md: inter-ocular distance 1, origin between the eyes, x to the
subject's left, y up, z towards the camera.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum
from functools import lru_cache

import numpy as np
import scipy.sparse
from scipy.spatial import cKDTree

from game import topology
from models.weights import require

NEUTRAL_FACE_FILE = "game/neutral_face-v1.npy"


class Part(IntEnum):
    FACE = 0
    SKULL = 1
    NECK = 2
    EYEBALL = 3
    EAR = 4
    MOUTH = 5


# Regions the parameter groups act on (docs/contracts.md section 3); every face vertex has one.
REGIONS = ("forehead", "brows", "eyes", "nose", "cheeks", "mouth", "jaw", "head", "ears", "neck")

# Seed landmarks per face region (subject's left side; right side by mirror); every face vertex
# takes the region of its nearest seed, which follows the face's anatomy without hand-drawn masks.
REGION_SEEDS = {
    "forehead": [10, 151, 9, 108, 337, 69, 299, 104, 333, 67, 297, 109, 338, 103, 332, 54, 284],
    "brows": [276, 283, 282, 295, 285, 300, 293, 334, 296, 336],
    "eyes": [
        263,
        249,
        390,
        373,
        374,
        380,
        381,
        382,
        362,
        398,
        384,
        385,
        386,
        387,
        388,
        466,
        257,
        258,
        259,
        260,
        467,
        253,
        254,
        339,
        255,
        359,
    ],
    "nose": [
        168,
        6,
        197,
        195,
        5,
        4,
        1,
        19,
        94,
        2,
        98,
        327,
        326,
        97,
        294,
        64,
        278,
        48,
        279,
        49,
        420,
        198,
        437,
        217,
        399,
        174,
        456,
        236,
        363,
        134,
        360,
        131,
        344,
        115,
        440,
        220,
    ],
    "mouth": [
        0,
        267,
        269,
        270,
        409,
        291,
        375,
        321,
        405,
        314,
        17,
        84,
        181,
        91,
        146,
        61,
        185,
        40,
        39,
        37,
        13,
        14,
        312,
        311,
        310,
        415,
        308,
        317,
        402,
        318,
        324,
        164,
        167,
        393,
        391,
        165,
    ],
    "cheeks": [
        280,
        352,
        345,
        346,
        347,
        348,
        425,
        411,
        376,
        433,
        416,
        427,
        266,
        330,
        329,
        350,
        349,
        451,
        450,
        449,
        448,
        261,
        446,
        265,
        372,
        383,
        353,
        342,
        445,
        444,
        443,
        442,
        436,
        426,
        423,
        371,
        355,
        429,
        358,
    ],
    "jaw": [
        152,
        148,
        377,
        176,
        400,
        149,
        378,
        150,
        379,
        136,
        365,
        172,
        397,
        58,
        288,
        132,
        361,
        175,
        199,
        200,
        18,
        428,
        208,
        171,
        396,
        140,
        369,
        32,
        262,
        201,
        421,
        313,
        406,
        418,
        424,
        422,
        430,
        431,
        395,
        394,
        364,
        367,
        435,
        401,
        323,
        93,
    ],
}


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


def neutral_face_landmarks() -> np.ndarray:
    """(468, 3) symmetrised neutral landmarks in world units (cached by `python -m game build-assets`)."""
    return np.load(require(NEUTRAL_FACE_FILE, made_by="python -m game build-assets"))


def landmarks_to_world(image_landmarks: np.ndarray, close_mouth: bool = True) -> np.ndarray:
    """Turn landmark-net output (x right, y down, z away from camera; pixels) into the symmetric neutral face."""
    points = image_landmarks * np.array([1.0, -1.0, -1.0])
    twin = topology.mirror_map(points)
    # Rotate so the symmetry plane is x = 0, then average each point with its mirrored twin.
    centred = points - points.mean(0)
    left_minus_right = centred - centred[twin]
    axis = np.linalg.svd(left_minus_right, full_matrices=False)[2][0]
    if axis @ (centred[263] - centred[33]) < 0:
        axis = -axis
    oval = centred[topology.loop("FACE_OVAL")]
    normal = np.linalg.svd(oval - oval.mean(0), full_matrices=False)[2][2]
    normal -= (normal @ axis) * axis
    normal /= np.linalg.norm(normal)
    if normal[2] < 0:
        normal = -normal
    up = np.cross(normal, axis)
    frame = np.stack([axis, up, normal])  # rows: new x, y, z
    aligned = centred @ frame.T
    mirrored = aligned[twin] * np.array([-1.0, 1.0, 1.0])
    symmetric = (aligned + mirrored) / 2
    left_eye = symmetric[topology.loop("LEFT_EYE")].mean(0)
    right_eye = symmetric[topology.loop("RIGHT_EYE")].mean(0)
    symmetric = (symmetric - (left_eye + right_eye) / 2) / np.linalg.norm(left_eye - right_eye)
    symmetric[np.abs(symmetric[:, 0]) < 1e-9, 0] = 0.0
    return _close_mouth(symmetric) if close_mouth else symmetric


def _close_mouth(points: np.ndarray) -> np.ndarray:
    """Close an open mouth (the source photo smiles): move the lips together, dragging their surroundings smoothly."""
    upper = [191, 80, 81, 82, 13, 312, 311, 310, 415]
    lower = [95, 88, 178, 87, 14, 317, 402, 318, 324]
    gap = points[upper, 1] - points[lower, 1]  # negative when open
    targets = np.concatenate([upper, lower])
    shift = np.concatenate([-gap / 2, gap / 2])  # upper lip down, lower lip up (gap < 0)
    # Gaussian radial-basis spread of the lip shifts; lips keep the exact shift, the chin a fraction.
    distances = np.linalg.norm(points[:, None, :2] - points[None, targets, :2], axis=-1)
    weights = np.exp(-((distances / 0.18) ** 2))
    weights /= weights.sum(1, keepdims=True) + 1e-9
    falloff = np.exp(-((distances.min(1) / 0.35) ** 2))
    out = points.copy()
    out[:, 1] += falloff * (weights @ shift)
    out[targets, 1] = points[targets, 1] + shift
    # A smile raises and widens the corners: bring them to the lip line and a neutral width.
    corners = np.array([61, 291])
    line = (out[13, 1] + out[14, 1]) / 2
    corner_shift = np.stack([-np.sign(out[corners, 0]) * 0.06, line - out[corners, 1] - 0.02, [0.0, 0.0]], 1)
    corner_distance = np.linalg.norm(out[:, None, :2] - out[None, corners, :2], axis=-1)
    corner_weights = np.exp(-((corner_distance / 0.3) ** 2))
    out += corner_weights @ corner_shift
    return out


def _subdivide(vertices: np.ndarray, triangles: np.ndarray, twin: np.ndarray):
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


def _boundary(triangles: np.ndarray) -> np.ndarray:
    """Vertices on edges used by only one triangle (open borders: oval, eye and mouth openings)."""
    edges = np.sort(np.concatenate([triangles[:, [0, 1]], triangles[:, [1, 2]], triangles[:, [2, 0]]]), axis=1)
    unique, counts = np.unique(edges, axis=0, return_counts=True)
    return np.unique(unique[counts == 1])


def _ellipsoid_radius(directions: np.ndarray, semi_axes: np.ndarray, power: float = 2.6) -> np.ndarray:
    """Radius of a superellipsoid along unit directions; power > 2 gives a rounder, less egg-shaped crown."""
    return 1.0 / (np.abs(directions / semi_axes) ** power).sum(-1) ** (1 / power)


def _taubin_smooth(vertices: np.ndarray, triangles: np.ndarray, fixed: np.ndarray, iterations: int = 4) -> np.ndarray:
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


def _grid_triangles(rows: int, cols: int, offset: int, closed: bool = True) -> np.ndarray:
    """Triangles of a rows x cols vertex grid (row-major), wrapping around the columns when closed."""
    tris = []
    last = cols if closed else cols - 1
    for r in range(rows - 1):
        for c in range(last):
            a, b = r * cols + c, r * cols + (c + 1) % cols
            tris += [(a, b, a + cols), (b, b + cols, a + cols)]
    return np.array(tris, dtype=np.int64) + offset


def _sphere(rings: np.ndarray, segments: int):
    """Unit sphere around +z: ring angles `rings` (rad from the +z pole, excluding poles) + both poles."""
    phi = np.linspace(0, 2 * np.pi, segments, endpoint=False)
    theta = rings[:, None]
    grid = np.stack([np.sin(theta) * np.cos(phi), np.sin(theta) * np.sin(phi), np.cos(theta) * np.ones_like(phi)], -1)
    points = np.concatenate([[[0, 0, 1]], grid.reshape(-1, 3), [[0, 0, -1]]])
    angles = np.concatenate([[0.0], np.repeat(rings, segments), [np.pi]])
    n = len(rings)
    tris = [(0, 1 + (c + 1) % segments, 1 + c) for c in range(segments)]
    tris += list(map(tuple, _grid_triangles(n, segments, 1)[:, ::-1]))
    last = 1 + n * segments
    tris += [(last, 1 + (n - 1) * segments + c, 1 + (n - 1) * segments + (c + 1) % segments) for c in range(segments)]
    return points, np.array(tris, dtype=np.int64), angles


class _Builder:
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
    vertices, triangles, twin, midpoint_of = _subdivide(face, triangles, face_twin)
    contours = [topology.landmark_set(n) for n in ("FACE_OVAL", "LEFT_EYE", "RIGHT_EYE", "LIPS")]
    vertices = _taubin_smooth(vertices, triangles, fixed=np.concatenate(contours + [_boundary(triangles)]))
    builder = _Builder()
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
        radius = (1 - blend) * start_radius + blend * _ellipsoid_radius(direction, SKULL_AXES)
        skull.append(SKULL_CENTRE + direction * radius[:, None])
    skull = np.concatenate(skull[:-1] + [[SKULL_CENTRE + back * SKULL_AXES[2]]])
    cols = len(oval)
    ring_rows = len(rings) - 1
    # Grid over [oval ring, skull rings], the oval ring being existing face vertices.
    skull_offset = builder.count
    grid_index = np.concatenate([oval, skull_offset + np.arange(ring_rows * cols)])
    tris = _grid_triangles(ring_rows + 1, cols, 0)
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
    neck_tris = _grid_triangles(len(heights), segments, 0)[:, ::-1]
    builder.add(neck, neck_tris, Part.NECK)
    anchors["neck"] = neck_centre + [0, -1.6, 0]

    # Eyeballs behind the eye openings; dense rings near the front pole carry the iris and pupil.
    eye_rings = np.concatenate([np.linspace(0.07, 0.62, 10), np.linspace(0.75, 2.8, 5)])
    unit, sphere_tris, angles = _sphere(eye_rings, 20)
    eyeball_radius = 0.21
    eyeball_angle = []
    for side, name in ((1, "LEFT_EYE"), (-1, "RIGHT_EYE")):
        opening = face[topology.loop(name)]
        centre = opening.mean(0) - np.array([0, 0.02, eyeball_radius - 0.035])
        anchors[f"eye_{'left' if side > 0 else 'right'}"] = centre
        builder.add(centre + unit * eyeball_radius, sphere_tris, Part.EYEBALL)
        eyeball_angle.append(angles)

    # Ears: flattened ellipsoids on the skull's sides at eye-to-nose height, tilted back.
    ear_unit, ear_tris, _ = _sphere(np.linspace(0.25, 2.9, 9), 16)
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
    cavity_unit, cavity_tris, _ = _sphere(np.linspace(0.3, 2.8, 6), 16)
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
    """Region of every vertex: nearest region seed on the face (twin: its landmarks' mirror map), the part's own region elsewhere."""
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
