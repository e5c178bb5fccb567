"""Bone-driven deformation, as in game character creators.

Each shape parameter drives one channel (move, rotate or scale) of one bone (`bones.csv`); a bone
deforms the mesh through smooth skinning weights, so the mesh follows
    v' = v + sum_b w_b(v) * (T_b(v) - v),   T_b(v) = pivot_b + R_b S_b (v - pivot_b) + t_b.
Weights are a smooth radial falloff around the bone's pivot, cut to the region its group names
(docs/contracts.md), so a parameter moves only its own part of the face. A mirrored bone is a
left/right pair driven by one parameter: symmetric by default, with explicit `asym_*` channels.
Rigid parts (eyeballs, ears, mouth cavity) are not skinned: the bones that carry them move them whole.
Hair-like parts (hair shell, brows, lashes; game.hair) ride on the skin: each takes the weights of the skin
around the point it sits on, and the `hair` sliders re-make their rest shape before the bones act.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass

import numpy as np
import scipy.sparse
from scipy.spatial import cKDTree

from game import parameters as P
from game.face import REGIONS
from game.hair import HAIR_SLIDERS, HairValues
from game.head import Head, Part

DEFORMABLE = (Part.FACE, Part.SKULL, Part.NECK)
RIGID_ANCHORS = {Part.EYEBALL: "eye", Part.EAR: "ear", Part.MOUTH: "mouth"}
CARRY_NAMES = {"eyeball": Part.EYEBALL, "ear": Part.EAR, "mouth": Part.MOUTH}
# How far a group's influence fades beyond its region: short on the face, long over the skull so
# the skull follows the face's border smoothly instead of creasing.
REGION_MARGIN = {Part.FACE: 0.2, Part.SKULL: 0.6, Part.NECK: 0.0}


@dataclass(frozen=True)
class Bone:
    """A row of bones.csv."""

    name: str
    group: str
    pivot: str
    radius: float
    mirrored: bool
    carries: tuple
    description: str


def load_bones() -> dict[str, Bone]:
    with open(P.BONES_FILE, newline="") as f:
        rows = list(csv.DictReader(f))
    return {
        r["bone"]: Bone(
            r["bone"],
            r["group"],
            r["pivot"],
            float(r["radius"]),
            r["mirrored"] == "1",
            tuple(r["carries"].split()),
            r["description"],
        )
        for r in rows
    }


def _falloff(distance: np.ndarray, radius: float) -> np.ndarray:
    """C1 bump: 1 at the pivot, 0 from `radius` on."""
    if np.isinf(radius):
        return np.ones_like(distance)
    x = np.clip(distance / radius, 0.0, 1.0)
    return (1.0 - x * x) ** 2


def _smoothstep(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3 - 2 * x)


class Rig:
    """Skinning weights of every bone instance on one neutral head, and the deformation they drive."""

    def __init__(self, head: Head):
        self.head = head
        self.bones = load_bones()
        self.region_weight = {group: self._region_weight(group) for group in REGIONS}
        pivots, columns, sides, self.instances = [], [], [], {}
        for bone in self.bones.values():
            for side in (1, -1) if bone.mirrored else (0,):
                pivot = self._pivot(bone, side)
                self.instances.setdefault(bone.name, []).append((len(pivots), side))
                pivots.append(pivot)
                sides.append(side)
                columns.append(self._weights(bone, pivot, side))
        self.pivots = np.array(pivots)
        self.sides = np.array(sides)
        self.attachment = self._attachment()  # (V, V): rows of hair-like vertices, the skin they ride on
        skin = scipy.sparse.csr_matrix(np.stack(columns, 1))  # (V, instances)
        self.weights = (skin + self.attachment @ skin).tocsr()
        self._channels = [(p.index, p.bone, p.channel, p.amount) for p in P.table() if p.kind == "shape"]
        hair = {p.name: p.index for p in P.table() if p.kind == "hair"}
        if set(hair) != set(HAIR_SLIDERS):
            raise ValueError(f"{P.TABLE_FILE}: the hair sliders must be {sorted(HAIR_SLIDERS)}, got {sorted(hair)}")
        self._hair = [(hair[name], field) for name, field in HAIR_SLIDERS.items()]
        self._table = self._channel_table()
        unknown = {bone for _, bone, _, _ in self._channels} - set(self.bones)
        if unknown:
            raise ValueError(f"{P.TABLE_FILE}: bones {sorted(unknown)} are not defined in {P.BONES_FILE}")

    # -- construction ---------------------------------------------------------------------------
    def _pivot(self, bone: Bone, side: int) -> np.ndarray:
        """Pivot of one instance: the mean of landmarks (mirrored for the right side) or a named anchor."""
        if bone.pivot.startswith("@"):
            name = bone.pivot[1:]
            if side and name.endswith("_left"):
                name = name[: -len("_left")] + ("_left" if side > 0 else "_right")
            return np.asarray(self.head.anchors[name], dtype=np.float64)
        indices = np.array([int(i) for i in bone.pivot.split()])
        if side < 0:
            indices = self.head.twin[indices]
        return self.head.vertices[indices].mean(0)

    def _region_weight(self, group: str) -> np.ndarray:
        """1 inside the group's region, fading to 0 over REGION_MARGIN outside it, on deformable parts."""
        head, weight = self.head, np.zeros(self.head.num_vertices)
        if group == "head":
            weight[np.isin(head.part, (Part.FACE, Part.SKULL))] = 1.0
            return weight
        if group == "neck":  # the neck, fading out over the shoulders (they keep their width)
            neck = head.part == Part.NECK
            weight[neck] = 1.0 - _smoothstep((-1.95 - head.vertices[neck, 1]) / 0.35)
            return weight
        deformable = np.isin(head.part, DEFORMABLE)
        core = deformable & (head.region == REGIONS.index(group))
        if not core.any():
            return weight
        distance, _ = cKDTree(head.vertices[core]).query(head.vertices)
        for part, margin in REGION_MARGIN.items():
            on_part = head.part == part
            weight[on_part] = 1.0 if margin == 0 else _smoothstep(1 - distance[on_part] / margin)
            weight[on_part & core] = 1.0
            if margin == 0:
                weight[on_part & ~core] = 0.0
        return weight

    def _weights(self, bone: Bone, pivot: np.ndarray, side: int) -> np.ndarray:
        head = self.head
        weight = _falloff(np.linalg.norm(head.vertices - pivot, axis=1), bone.radius) * self.region_weight[bone.group]
        if side:
            # A mirrored instance acts on its own half, fading across the midline (where both halves get 0.5).
            weight *= _smoothstep((head.vertices[:, 0] * side + 0.05) / 0.1)
        for part, anchor in RIGID_ANCHORS.items():
            members = head.part == part
            weight[members] = 0.0
            if part not in [CARRY_NAMES[c] for c in bone.carries]:
                continue
            for anchor_side, suffix in ((1, "_left"), (-1, "_right"), (0, "")):
                name = anchor + suffix
                if name not in head.anchors:
                    continue
                on_side = members if anchor_side == 0 else members & (np.sign(head.vertices[:, 0]) == anchor_side)
                if side and anchor_side and anchor_side != side:
                    continue
                at_anchor = _falloff(np.linalg.norm(head.anchors[name] - pivot), bone.radius)
                weight[on_side] = at_anchor
        return weight

    def _attachment(self) -> scipy.sparse.csr_matrix:
        """Inverse-distance weights from each hair-like vertex's skin point to the 4 nearest face/skull vertices."""
        head = self.head
        skin = np.flatnonzero(np.isin(head.part, (Part.FACE, Part.SKULL)))
        distance, nearest = cKDTree(head.vertices[skin]).query(head.attached_to, k=4)
        weight = 1.0 / (distance + 1e-3) ** 2
        weight /= weight.sum(1, keepdims=True)
        rows = np.repeat(head.attached, 4)
        n = head.num_vertices
        return scipy.sparse.csr_matrix((weight.ravel(), (rows, skin[nearest].ravel())), shape=(n, n))

    def hair_values(self, params: np.ndarray) -> HairValues:
        """The `hair` sliders of a parameter vector as fractions in [-1, 1]."""
        return HairValues(**{field: float(params[index]) / P.HIGH for index, field in self._hair})

    def rest(self, params: np.ndarray) -> np.ndarray:
        """The neutral head with its hair-like parts shaped by the `hair` sliders (before any bone acts)."""
        return self.head.hair.rest(self.head.vertices, self.hair_values(params))

    # -- evaluation -----------------------------------------------------------------------------
    def _channel_table(self) -> dict[str, np.ndarray]:
        """Every (shape slider, bone instance) pair as flat arrays, so `transforms` needs no Python loop: the
        parameter index, its amount times the side's sign where the channel mirrors, and where it adds (translation
        or angle: instance * 3 + axis) or multiplies (scale)."""
        rows = {"add": [], "scale": []}  # (parameter index, coefficient, target: 0-2 translation, 3-5 angle / axis)
        for index, bone, channel, amount in self._channels:
            for instance, side in self.instances[bone]:
                mirror = side if side else 1
                if channel in ("tx", "shift_x", "ty", "tz", "asym_ty"):
                    axis = 1 if channel in ("ty", "asym_ty") else 2 if channel == "tz" else 0
                    sign = mirror if channel in ("tx", "asym_ty") else 1
                    rows["add"].append((index, amount * sign, instance * 6 + axis))
                elif channel in ("rx", "ry", "rz"):
                    sign = 1 if channel == "rx" else mirror
                    rows["add"].append((index, amount * sign, instance * 6 + 3 + "xyz".index(channel[1])))
                elif channel in ("sx", "sy", "sz", "s", "asym_s"):
                    sign = mirror if channel == "asym_s" else 1
                    axes = (0, 1, 2) if channel in ("s", "asym_s") else ("xyz".index(channel[1]),)
                    rows["scale"] += [(index, amount * sign, instance * 3 + axis) for axis in axes]
                else:
                    raise ValueError(f"{P.TABLE_FILE}: unknown channel {channel!r} of bone {bone!r}")
        table = {}
        for kind, entries in rows.items():
            index, coefficient, target = (np.array(column) for column in zip(*entries)) if entries else ([],) * 3
            table[kind] = (np.asarray(index, int), np.asarray(coefficient, float), np.asarray(target, int))
        return table

    def transforms(self, params: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per bone instance: (A (I,3,3), c (I,3)) with T(v) = A v + c."""
        count = len(self.pivots)
        f = np.asarray(params, np.float64) / P.HIGH
        index, coefficient, target = self._table["add"]
        moves = np.bincount(target, coefficient * f[index], minlength=count * 6).reshape(count, 6)
        translation, angles = moves[:, :3], moves[:, 3:]  # angles in degrees about x, y, z
        index, coefficient, target = self._table["scale"]
        scale = np.ones(count * 3)
        np.multiply.at(scale, target, 1 + coefficient * f[index])
        scale = scale.reshape(count, 3)
        rotation = _rotation_xyz(np.deg2rad(angles))
        linear = rotation * scale[:, None, :]  # R @ diag(S)
        offset = self.pivots + translation - np.einsum("bij,bj->bi", linear, self.pivots)
        return linear, offset

    def deform(self, params: np.ndarray) -> np.ndarray:
        """Vertices (V, 3) of the head shaped by one parameter vector (267,)."""
        linear, offset = self.transforms(params)
        identity = np.eye(3)
        blended_linear = (self.weights @ (linear - identity).reshape(-1, 9)).reshape(-1, 3, 3)
        blended_offset = self.weights @ offset
        v = self.rest(params)
        return v + np.einsum("vij,vj->vi", blended_linear, v) + blended_offset


def _rotation_xyz(angles: np.ndarray) -> np.ndarray:
    """Rotation matrices Rz @ Ry @ Rx for (N, 3) angles in radians."""
    cx, cy, cz = np.cos(angles).T
    sx, sy, sz = np.sin(angles).T
    zero, one = np.zeros_like(cx), np.ones_like(cx)
    rx = np.stack([one, zero, zero, zero, cx, -sx, zero, sx, cx], 1).reshape(-1, 3, 3)
    ry = np.stack([cy, zero, sy, zero, one, zero, -sy, zero, cy], 1).reshape(-1, 3, 3)
    rz = np.stack([cz, -sz, zero, sz, cz, zero, zero, zero, one], 1).reshape(-1, 3, 3)
    return rz @ ry @ rx
