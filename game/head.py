"""The game's neutral character: MediaPipe's face surface completed into a portrait bust.

Built deterministically from the game's neutral face (game.face, shipped data): a subdivided face, a skull
lofted from the face oval to the back of the head, a neck flaring into clothed shoulders, ears, eyeballs, a
mouth cavity, and (engine v2) hair-like parts from game.hair: a scalp-hair shell, brow strips and lash ribbons.
Units follow docs/contracts.md: inter-ocular distance 1, origin between the eyes, x to the
subject's left, y up, z towards the camera.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum
from functools import lru_cache

import numpy as np
from scipy.spatial import cKDTree

from game import hair, topology
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
    NECK = 2  # neck, shoulders and the clothed chest (engine v2)
    EYEBALL = 3
    EAR = 4
    MOUTH = 5
    HAIR = 6  # the scalp-hair shell (game.hair)
    BROW = 7  # eyebrow strips over the skin
    LASH = 8  # upper eyelash ribbons


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
    uv: np.ndarray = None  # (V, 2) detail-texture coordinates (skin grain, stubble, strands), game.detail
    cavity: np.ndarray = None  # (V,) ambient light reaching the vertex in the neutral head, 0..1
    body: np.ndarray = None  # (V,) 0 = moves with the head's pose, 1 = with the torso's
    clothing: np.ndarray = None  # (V,) 1 on the clothes, 0 on skin
    solid: np.ndarray = None  # (F,) triangles whose back faces never show (drawn with back-face culling)
    hair: hair.HairRig = None  # where the hair-like parts are, and their rest shape for given sliders
    attached: np.ndarray = None  # (A,) vertices that ride on the skin (hair, brows, lashes)
    attached_to: np.ndarray = None  # (A, 3) the skin point each rides on, in the neutral head

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
    rings = np.linspace(0, 1, 10)[1:] ** 1.3
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

    # Neck and shoulders: rings lofted from inside the head down past the frame, clothed below a neckline.
    torso, torso_tris = _torso()
    builder.add(torso, torso_tris, Part.NECK)
    anchors["neck"] = np.array([0.0, -1.6, -1.05])

    # Eyeballs behind the eye openings; dense rings near the front pole carry the iris and pupil.
    eye_rings = np.concatenate([np.linspace(0.07, 0.62, 10), np.linspace(0.8, 1.7, 3)])  # the back is never seen
    unit, sphere_tris, angles = sphere(eye_rings, 16)
    eyeball_radius = 0.21
    eyeball_angle = []
    for side, name in ((1, "LEFT_EYE"), (-1, "RIGHT_EYE")):
        opening = face[topology.loop(name)]
        centre = opening.mean(0) - np.array([0, 0.02, eyeball_radius - 0.035])
        anchors[f"eye_{'left' if side > 0 else 'right'}"] = centre
        builder.add(centre + unit * eyeball_radius, sphere_tris, Part.EYEBALL)
        eyeball_angle.append(angles)

    # Ears: flattened ellipsoids on the skull's sides at eye-to-nose height, tilted back.
    ear_unit, ear_tris, _ = sphere(np.linspace(0.25, 2.9, 8), 12)
    ear_shape = ear_unit * np.array([0.34, 0.55, 0.09])  # local: x across, y up, z thickness
    for side in (1, -1):
        root = np.array([side * (SKULL_AXES[0] - 0.06), -0.28, SKULL_CENTRE[2] - 0.05])
        tilt = np.deg2rad(12)
        yaw = np.deg2rad(side * 76)  # ear plane nearly sagittal, opening slightly forward, close to the skull
        ry = np.array([[np.cos(yaw), 0, np.sin(yaw)], [0, 1, 0], [-np.sin(yaw), 0, np.cos(yaw)]])
        rx = np.array([[1, 0, 0], [0, np.cos(tilt), -np.sin(tilt)], [0, np.sin(tilt), np.cos(tilt)]])
        ear = (ear_shape @ (ry @ rx).T) + root + np.array([side * 0.05, 0, 0])
        builder.add(ear, ear_tris, Part.EAR)  # both ears turned, not mirrored: the same outward winding
        anchors[f"ear_{'left' if side > 0 else 'right'}"] = root

    # Mouth cavity: a dark half-ellipsoid behind the lips, seen when the lips part.
    mouth_centre = (face[13] + face[14]) / 2 - np.array([0, 0, 0.2])
    cavity_unit, cavity_tris, _ = sphere(np.linspace(0.3, 2.8, 6), 16)
    cavity = mouth_centre + cavity_unit * np.array([0.42, 0.14, 0.18])
    builder.add(cavity, cavity_tris[:, ::-1], Part.MOUTH)
    anchors["mouth"] = mouth_centre

    # Hair-like parts (game.hair): brow strips and lash ribbons over the skin, the scalp-hair shell around it.
    skin_vertices = np.concatenate(builder.vertices[:2])  # face and skull
    skin_normals = _normals(skin_vertices, np.concatenate(builder.triangles[:2]))
    landmarks = skin_vertices[:468]
    attached, attached_to, strips = [], [], {}
    for strip in hair.brow_strips(landmarks, skin_vertices, skin_normals):
        offset = builder.add(strip.root, strip.triangles, Part.BROW)
        strips.setdefault("brows", []).append((offset + np.arange(len(strip.root)), strip))
    for strip in hair.lash_ribbons(landmarks, skin_vertices, skin_normals):
        neutral = strip.root + strip.growth * hair.lash_length(0.0)
        offset = builder.add(neutral, strip.triangles, Part.LASH)
        strips.setdefault("lashes", []).append((offset + np.arange(len(strip.root)), strip))
    for index, strip in strips["brows"] + strips["lashes"]:
        attached.append(index)
        attached_to.append(strip.root)
    obstacles = np.concatenate(
        [skin_vertices] + [v for v, p in zip(builder.vertices, builder.part) if p[0] == Part.EAR]
    )
    table = hair.scalp_table(skin_vertices, obstacles, SKULL_CENTRE, forehead_top=float(landmarks[10, 1]))
    scalp = hair.ScalpHair(table)
    neutral_hair = scalp.positions(hair.HairValues())
    hair_triangles, dome = scalp.triangles(0)
    first_hair_triangle = sum(len(t) for t in builder.triangles)  # the hair shell's, then the beard's
    offset = builder.add(neutral_hair, hair_triangles, Part.HAIR)
    scalp_index = offset + np.arange(len(neutral_hair))
    attached.append(scalp_index)
    attached_to.append(scalp.anchors(neutral_hair))
    _, beard = hair.beard_shell(skin_vertices, skin_normals, np.concatenate(builder.triangles[:2]), landmarks)
    offset = builder.add(beard.positions(0.0), beard.triangles, Part.HAIR)
    beard_index = offset + np.arange(len(beard.root))
    attached.append(beard_index)
    attached_to.append(beard.root)

    vertices = np.concatenate(builder.vertices)
    part = np.concatenate(builder.part)
    places = vertices.copy()
    places[beard_index] = beard.root  # a clean-shaven beard is folded to one point: pair it by the skin under it
    twin = _mirror_twins(places, part, twin)
    angle = np.full(len(vertices), np.nan)
    eyeball_vertices = np.flatnonzero(part == Part.EYEBALL)
    angle[eyeball_vertices] = np.concatenate(eyeball_angle)
    triangles = np.concatenate(builder.triangles).astype(np.int32)
    region = _regions(vertices, part, face, face_twin)
    solid = _solid(triangles, part, region)
    solid[first_hair_triangle : first_hair_triangle + len(dome)] = dome  # the hair lying on the scalp
    solid[first_hair_triangle + len(dome) :] = True  # the beard shell hugs the skin
    uv = _detail_coordinates(vertices, part, angle, anchors)
    uv[scalp_index] = scalp.uv()
    for index, strip in strips["brows"] + strips["lashes"]:
        uv[index] = strip.uv
    uv[beard_index] = beard.uv
    head = Head(
        vertices=vertices,
        triangles=triangles,
        part=part.astype(np.int8),
        region=region,
        twin=twin.astype(np.int64),
        anchors=anchors,
        eyeball_angle=angle,
        uv=uv.astype(np.float32),
        cavity=_cavity(vertices, triangles, part),
        body=np.where(part == Part.NECK, _smoothstep((-1.5 - vertices[:, 1]) / 0.9), 0.0),
        clothing=np.where(part == Part.NECK, _clothing(vertices), 0.0),
        solid=solid,
        hair=hair.HairRig(scalp, scalp_index, strips["brows"], strips["lashes"], (beard_index, beard)),
        attached=np.concatenate(attached),
        attached_to=np.concatenate(attached_to),
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
    region[part == Part.BROW] = REGIONS.index("brows")
    region[part == Part.LASH] = REGIONS.index("eyes")
    return region.astype(np.int8)


def _smoothstep(x):
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3 - 2 * x)


def _solid(triangles: np.ndarray, part: np.ndarray, region: np.ndarray) -> np.ndarray:
    """Triangles of closed, outward-wound surfaces whose back faces never show: skull, torso, eyeballs, brows,
    and the face away from its openings (the insides of the lids and lips show). Not the ears (extreme faces
    push them through the skin), lashes or hanging hair. Measured on 60 random faces at 128 px, drawing these
    with back-face culling changes at most 7 pixels of one picture."""
    corners, regions = part[triangles], region[triangles]
    openings = np.isin(regions, [REGIONS.index("mouth"), REGIONS.index("eyes")]).any(1)
    solid = np.isin(corners, (Part.SKULL, Part.NECK, Part.EYEBALL, Part.BROW)).all(1)
    return solid | ((corners == Part.FACE).all(1) & ~openings)


# The torso's rings, top to bottom: height, half-width, half-depth, centre depth, superellipse power. Slightly
# stylised (shoulders a little high), so the fixed game camera shows a collar and the tops of the shoulders.
TORSO_PROFILE = np.array(
    [
        (-0.3, 0.62, 0.57, -1.00, 2.0),
        (-1.2, 0.70, 0.62, -1.00, 2.0),
        (-1.8, 0.74, 0.65, -1.02, 2.0),
        (-2.05, 0.84, 0.70, -1.06, 2.1),
        (-2.25, 1.30, 0.86, -1.12, 2.5),
        (-2.5, 2.05, 1.00, -1.16, 2.9),
        (-2.8, 2.60, 1.08, -1.18, 3.3),
        (-3.2, 2.85, 1.12, -1.18, 3.5),
        (-4.0, 2.95, 1.14, -1.18, 3.5),
        (-5.5, 2.95, 1.14, -1.18, 3.5),
    ]
)
NECKLINE_SIDE, NECKLINE_FRONT = -2.12, -2.42  # where the clothes start, at the sides/back and at the front


def _neckline(phi: np.ndarray) -> np.ndarray:
    """Height of a crew neckline at azimuth phi (0 = front): lowest at the front."""
    return NECKLINE_SIDE + (NECKLINE_FRONT - NECKLINE_SIDE) * np.maximum(np.cos(phi), 0) ** 2


def _torso() -> tuple[np.ndarray, np.ndarray]:
    """Neck, shoulders and chest: superellipse rings (dense where the shoulders turn), open at both ends."""
    from scipy.interpolate import PchipInterpolator

    heights = np.concatenate([np.linspace(-0.3, -1.8, 4), np.linspace(-1.95, -2.9, 10), np.linspace(-3.2, -5.0, 3)])
    profile = PchipInterpolator(TORSO_PROFILE[::-1, 0], TORSO_PROFILE[::-1, 1:])(heights)
    segments = 32
    phi = np.linspace(0, 2 * np.pi, segments, endpoint=False)
    s, c = np.sin(phi), np.cos(phi)
    rings = []
    for y, (width, depth, centre_z, power) in zip(heights, profile):
        x = width * np.sign(s) * np.abs(s) ** (2 / power)
        z = depth * np.sign(c) * np.abs(c) ** (2 / power)
        # Clothes stand a little off the skin below the neckline (a collar edge the light catches).
        lift = 1 + 0.045 * _smoothstep((_neckline(phi) - y) / 0.06 + 0.5) / max(width, depth)
        rings.append(np.stack([x * lift, np.full_like(x, y), centre_z + z * lift], 1))
    triangles = grid_triangles(len(heights), segments, 0)[:, ::-1]
    return np.concatenate(rings), triangles


def _clothing(vertices: np.ndarray) -> np.ndarray:
    """1 below the neckline (clothes), 0 above (skin), a one-ring blend between."""
    phi = np.arctan2(vertices[:, 0], vertices[:, 2] + 1.1)
    return _smoothstep((_neckline(phi) - vertices[:, 1]) / 0.06 + 0.5)


def _normals(vertices: np.ndarray, triangles: np.ndarray) -> np.ndarray:
    """Unit area-weighted vertex normals (numpy only: the head is built before any renderer exists)."""
    a, b, c = vertices[triangles[:, 0]], vertices[triangles[:, 1]], vertices[triangles[:, 2]]
    face = np.cross(b - a, c - a)
    normals = np.zeros_like(vertices)
    for k in range(3):
        np.add.at(normals, triangles[:, k], face)
    return normals / np.maximum(np.linalg.norm(normals, axis=1, keepdims=True), 1e-12)


def _cavity(vertices: np.ndarray, triangles: np.ndarray, part: np.ndarray) -> np.ndarray:
    """Ambient occlusion stand-in per vertex: how far the surface around it rises in front of its tangent plane.

    Concave places (eye sockets, nostrils, mouth corners, under the chin, behind the ears) get less light.
    Computed once on the neutral head (hair excluded: it changes with the sliders).
    """
    solid = np.isin(part, (Part.FACE, Part.SKULL, Part.NECK, Part.EAR))
    normals = _normals(vertices, triangles)
    tree = cKDTree(vertices[solid])
    light = np.ones(len(vertices))
    for radius, strength in ((0.12, 1.6), (0.35, 1.0)):
        distance, nearest = tree.query(vertices, k=48, distance_upper_bound=radius)
        valid = np.isfinite(distance)
        offsets = vertices[solid][np.minimum(nearest, solid.sum() - 1)] - vertices[:, None]
        rise = np.where(valid, (offsets * normals[:, None]).sum(-1), 0.0).sum(1) / np.maximum(valid.sum(1), 1)
        light -= strength * np.clip(rise / radius, 0, 0.35)
    light = np.clip(light, 0.35, 1.0)
    light[~solid] = 1.0
    return light


def _detail_coordinates(vertices: np.ndarray, part: np.ndarray, eyeball_angle: np.ndarray, anchors) -> np.ndarray:
    """Detail-texture coordinates (game.detail: 4 texels per 1/16 iod): front projection on skin and clothes,
    side projection on the ears, (around, out) on the eyeballs for iris fibres; strips set their own."""
    uv = vertices[:, :2] * 0.25
    ear = part == Part.EAR
    uv[ear] = vertices[ear][:, [2, 1]] * 0.25
    eyeball = part == Part.EYEBALL
    centre = np.where(vertices[eyeball, :1] > 0, anchors["eye_left"], anchors["eye_right"])
    around = np.arctan2(vertices[eyeball, 1] - centre[:, 1], vertices[eyeball, 0] - centre[:, 0])
    uv[eyeball] = np.stack([around * 1.5, eyeball_angle[eyeball] * 0.5], 1)
    return uv
