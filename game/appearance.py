"""Colours of the character: skin from the game's palette, eyes, brows, hair, lips, make-up and stubble.

Each appearance parameter blends a colour into a fixed per-vertex mask of its own region (masks are
computed once from the neutral head), so it changes colours only, and only there.
Over 300 lines on purpose: one colour model, its masks and its palette read together.
"""

from __future__ import annotations

import numpy as np
from scipy.spatial import cKDTree

from game import parameters as P
from game import topology
from game.head import Head, Part

# sRGB in [0, 1]; a parameter moves continuously through its palette (-2.5 = first, +2.5 = last entry).
SKIN_PALETTE = (
    np.array(
        [
            (255, 226, 204),
            (243, 204, 178),
            (232, 186, 152),
            (219, 166, 128),
            (203, 145, 106),
            (180, 122, 86),
            (152, 99, 66),
            (122, 77, 51),
            (94, 58, 39),
            (68, 42, 30),
        ]
    )
    / 255.0
)
HAIR_PALETTE = (
    np.array(
        [
            (22, 18, 16),
            (48, 33, 24),
            (84, 56, 36),
            (122, 86, 55),
            (165, 128, 83),
            (206, 172, 116),
            (232, 220, 190),
        ]
    )
    / 255.0
)
EYE_PALETTE = (
    np.array(
        [
            (58, 34, 20),
            (102, 62, 33),
            (150, 102, 42),
            (116, 108, 58),
            (78, 118, 72),
            (66, 108, 160),
            (128, 140, 152),
        ]
    )
    / 255.0
)
LIP_PALETTE = np.array([(206, 148, 136), (196, 112, 108), (178, 70, 78), (140, 28, 42)]) / 255.0
EYESHADOW_PALETTE = (
    np.array(
        [
            (110, 78, 60),
            (120, 70, 130),
            (60, 90, 150),
            (70, 120, 80),
            (190, 150, 70),
            (200, 110, 140),
        ]
    )
    / 255.0
)
SCLERA = np.array([0.93, 0.92, 0.90])
PUPIL = np.array([0.03, 0.03, 0.03])
MOUTH_INSIDE = np.array([0.28, 0.08, 0.08])


def palette_colour(palette: np.ndarray, value: float) -> np.ndarray:
    """Colour at a parameter value, interpolating linearly between neighbouring palette entries."""
    position = (np.clip(value, P.LOW, P.HIGH) - P.LOW) / (P.HIGH - P.LOW) * (len(palette) - 1)
    low = int(np.floor(position))
    high = min(low + 1, len(palette) - 1)
    t = position - low
    return (1 - t) * palette[low] + t * palette[high]


def palette_value(palette: np.ndarray, entry: int) -> float:
    """Parameter value that lands exactly on a palette entry."""
    return P.LOW + entry * (P.HIGH - P.LOW) / (len(palette) - 1)


def _smoothstep(x):
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3 - 2 * x)


def _bump(points: np.ndarray, centres: np.ndarray, radius: float) -> np.ndarray:
    """Smooth blob around the nearest centre, exactly 0 beyond `radius` (so a slider's region is sharp)."""
    d2 = ((points[:, None, :] - centres[None]) ** 2).sum(-1).min(1)
    return np.clip(1 - d2 / radius**2, 0, 1) ** 2


def _polyline_distance(points: np.ndarray, polyline: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
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


def _inside_polygon_2d(points: np.ndarray, polygon: np.ndarray) -> np.ndarray:
    """Even-odd rule on (x, y)."""
    x, y = points[:, 0], points[:, 1]
    inside = np.zeros(len(points), bool)
    px, py = polygon[:, 0], polygon[:, 1]
    for i in range(len(polygon)):
        j = i - 1
        crosses = ((py[i] > y) != (py[j] > y)) & (x < (px[j] - px[i]) * (y - py[i]) / (py[j] - py[i] + 1e-12) + px[i])
        inside ^= crosses
    return inside


class Appearance:
    """Per-vertex colour and gloss of a head for given appearance parameters."""

    def __init__(self, head: Head):
        self.head = head
        self.sliders = [(p.name, p.index) for p in P.table() if p.kind == "appearance"]  # once, not per render
        v, part = head.vertices, head.part
        self.face = part == Part.FACE
        self.skin = np.isin(part, (Part.FACE, Part.SKULL, Part.NECK, Part.EAR))
        self.eyeball = part == Part.EYEBALL
        twin = head.twin
        lm = v[:468]

        # Brows: distance to the centreline between the brow's upper and lower landmark rows.
        brow_distance, brow_along = [], []
        for lower, upper in (
            ([276, 283, 282, 295, 285], [300, 293, 334, 296, 336]),
            ([46, 53, 52, 65, 55], [70, 63, 105, 66, 107]),
        ):
            centre = (lm[lower] + lm[upper]) / 2
            d, along = _polyline_distance(v, centre)
            brow_distance.append(d)
            brow_along.append(along)
        closer = brow_distance[0] <= brow_distance[1]
        self.brow_distance = np.where(closer, brow_distance[0], brow_distance[1])
        self.brow_along = np.where(closer, brow_along[0], brow_along[1])  # 0 = outer end, 1 = inner end

        # Lips: inside the outer lip contour.
        outer = [61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291, 409, 270, 269, 267, 0, 37, 39, 40, 185]
        inside = _inside_polygon_2d(v, lm[outer]) & self.face
        edge, _ = _polyline_distance(v, np.concatenate([lm[outer], lm[outer[:1]]]))
        self.lips = np.where(inside, _smoothstep(edge / 0.03), 0.0) * self.face
        self.lip_edge = np.where(inside, np.exp(-((edge / 0.03) ** 2)), 0.0) * self.face

        eye_loops = [lm[topology.loop("LEFT_EYE")], lm[topology.loop("RIGHT_EYE")]]
        eye_distance = np.minimum(*[cKDTree(loop).query(v)[0] for loop in eye_loops])
        above_eye = np.maximum(
            *[(v[:, 1] - loop[:, 1].mean()) * (np.abs(v[:, 0] - loop[:, 0].mean()) < 0.35) for loop in eye_loops]
        )
        self.eyeshadow = self.face * _smoothstep((0.22 - eye_distance) / 0.1) * _smoothstep(above_eye / 0.05)
        self.eyeliner = self.face * np.exp(-((eye_distance / 0.03) ** 2))
        self.under_eye = self.face * _bump(v, lm[[253, twin[253], 254, twin[254]]] - [0, 0.05, 0], 0.16)
        self.blush = self.face * _bump(v, lm[[425, twin[425]]] + [0, 0.05, 0], 0.32)
        self.contour = self.face * _bump(v, lm[[411, twin[411], 379, twin[379]]], 0.3)
        self.redness = self.skin * np.maximum(
            _bump(v, lm[[425, twin[425], 1, 4]], 0.4) * self.face, (part == Part.EAR) * 0.6
        )
        nose_cheeks = _bump(v, lm[[4, 5, 195, 425, twin[425], 330, twin[330]]], 0.35) * self.face
        # Freckles: a fixed per-vertex pattern (seeded), so a character's freckles never move.
        pattern = np.random.default_rng(1234).random(len(v))
        self.freckles = nose_cheeks * (pattern > 0.8)
        lower_face = self.face * (1 - self.lips) * (v[:, 1] < lm[2, 1])
        self.stubble_height = v[:, 1]
        self.stubble_base = lower_face * _smoothstep((np.abs(v[:, 0]) - 0.0) / 0.1 + 1)
        self.moustache = self.face * (1 - self.lips) * _bump(v, (lm[[0]] + lm[[2]]) / 2, 0.3)
        self.moustache *= np.exp(-((v[:, 0] / 0.45) ** 4))

        # Hair: above a hairline that runs from the forehead down to the nape, with sideburns.
        self.hair_region = np.isin(part, (Part.FACE, Part.SKULL))
        self.forehead_top = lm[10, 1]
        self.eye_angle = head.eyeball_angle
        self.nose_tip = lm[1]

    def hair_mask(self, hairline: float, sideburns: float) -> np.ndarray:
        v = self.head.vertices
        front_y = self.forehead_top - 0.06 + 0.12 * hairline  # hairline height on the forehead
        depth = np.clip((0.3 - v[:, 2]) / 2.1, 0, 1)  # 0 at the forehead, 1 at the back
        line = front_y + (-1.0 - front_y) * depth**1.6
        near_ear = np.exp(-(((np.abs(v[:, 0]) - 1.05) / 0.12) ** 2 + ((v[:, 2] + 0.55) / 0.25) ** 2))
        line -= near_ear * (0.35 + 0.25 * sideburns)
        return self.hair_region * _smoothstep((v[:, 1] - line) / 0.06)

    def __call__(self, params: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(colours (V, 3) float32 in [0, 1], gloss (V,) float32) for one parameter vector."""
        value = {name: float(params[index]) for name, index in self.sliders}
        f = {k: x / P.HIGH for k, x in value.items()}  # -1 .. 1
        # Amount-like sliders (make-up, freckles, stubble): 0 at -2.5, 0.25 at the neutral 0, 1 at +2.5,
        # so the default face is nearly bare while every value still changes the picture.
        amount = {k: ((x + 1) / 2) ** 2 for k, x in f.items()}
        n = self.head.num_vertices
        colour = np.zeros((n, 3))
        gloss = np.full(n, 0.5)

        skin = palette_colour(SKIN_PALETTE, value["skin_tone"])
        skin = skin * (1 + 0.06 * f["skin_undertone"] * np.array([0.3, 0.4, -1.0]))
        base = np.tile(skin, (n, 1))
        base = _mix(base, np.array([0.85, 0.35, 0.3]), self.redness * 0.25 * amount["skin_redness"])
        base = _mix(base, skin * 0.62, self.under_eye * 0.7 * amount["under_eye_shade"])
        base = _mix(base, skin * 0.6 * np.array([1.0, 0.85, 0.7]), self.freckles * amount["freckles"])
        base = _mix(base, skin * 0.72, self.contour * 0.7 * amount["contour"])
        blush = (
            np.array([1.0, 0.62, 0.38]) * (1 - amount["blush_hue"]) + np.array([0.9, 0.3, 0.6]) * amount["blush_hue"]
        )
        base = _mix(base, blush, self.blush * 0.6 * amount["blush"])
        stubble_colour = palette_colour(HAIR_PALETTE, value["hair_color"]) * 0.8 + skin * 0.2
        extent = _smoothstep((self.nose_tip[1] - 0.45 + 0.35 * f["stubble_extent"] - self.stubble_height) / 0.15)
        base = _mix(base, stubble_colour, self.stubble_base * extent * 0.55 * amount["stubble"])
        base = _mix(base, stubble_colour * 0.7, self.moustache * amount["moustache"])
        shadow = palette_colour(EYESHADOW_PALETTE, value["eyeshadow_color"])
        base = _mix(base, shadow, self.eyeshadow * 0.7 * amount["eyeshadow"])
        base = _mix(base, np.array([0.05, 0.04, 0.04]), self.eyeliner * 0.9 * amount["eyeliner"])

        lip = palette_colour(LIP_PALETTE, value["lip_color"]) * (1 - 0.25 * f["lip_darkness"])
        grey = lip.mean()
        lip = grey + (lip - grey) * (1 + 0.5 * f["lip_saturation"])
        base = _mix(base, lip, self.lips)
        base = _mix(base, lip * 0.5, self.lip_edge * 0.9 * amount["lip_line"])
        gloss = np.where(self.skin, 0.4 + 0.35 * f["skin_shine"], gloss)
        gloss = gloss + self.lips * (1.5 + 1.5 * f["lip_gloss"])

        hair = palette_colour(HAIR_PALETTE, value["hair_color"])
        if f["hair_redness"] > 0:
            hair = hair * (1 + 0.3 * f["hair_redness"] * np.array([1.0, -0.1, -0.5]))
        else:
            hair = _mix(hair[None], np.full(3, hair.mean()), np.array([-0.6 * f["hair_redness"]]))[0]
        hair = hair.mean() + (hair - hair.mean()) * (1 + 0.5 * f["hair_saturation"])
        hair_mask = self.hair_mask(f["hair_hairline"], f["sideburn_length"])
        base = _mix(base, hair, hair_mask)
        gloss = np.where(hair_mask > 0.5, 0.5 + 0.45 * f["hair_sheen"], gloss)

        brow = palette_colour(HAIR_PALETTE, value["brow_color"]) * 0.85
        width = (0.065 + 0.03 * f["brow_thickness"]) * (0.7 + 0.6 * self.brow_along)
        brow_mask = self.face * _smoothstep((width - self.brow_distance) / 0.025)
        base = _mix(base, brow, brow_mask * (0.55 + 0.4 * amount["brow_density"]))
        colour[self.skin] = base[self.skin]

        angle = self.eye_angle[self.eyeball]
        iris_angle = 0.42 * (1 + 0.18 * f["iris_size"])
        pupil_angle = 0.2 * (1 + 0.6 * f["pupil_size"])
        iris = palette_colour(EYE_PALETTE, value["eye_color"]) * (1 + 0.3 * f["eye_color_brightness"])
        sclera = SCLERA * (1 - 0.4 * (1 - amount["sclera_tint"]) * np.array([0.0, 0.5, 1.0]))
        in_iris = _smoothstep((iris_angle - angle) / 0.04)[:, None]
        in_pupil = _smoothstep((pupil_angle - angle) / 0.03)[:, None]
        ring = np.exp(-(((angle - iris_angle) / 0.05) ** 2))[:, None] * (0.3 + 0.6 * amount["limbal_ring"])
        eye = sclera * (1 - in_iris) + iris * in_iris
        eye = eye * (1 - ring) + PUPIL * ring
        eye = eye * (1 - in_pupil) + PUPIL * in_pupil
        colour[self.eyeball] = eye
        gloss[self.eyeball] = 1.6
        colour[self.head.part == Part.MOUTH] = MOUTH_INSIDE
        return np.clip(colour, 0, 1).astype(np.float32), np.clip(gloss, 0, 3).astype(np.float32)


def _mix(base: np.ndarray, colour: np.ndarray, weight: np.ndarray) -> np.ndarray:
    weight = np.clip(weight, 0, 1)[:, None]
    return base * (1 - weight) + np.broadcast_to(colour, base.shape) * weight


def estimate_skin_tone(aligned: np.ndarray) -> tuple[float, np.ndarray]:
    """Skin-tone parameter of the palette entry nearest (in CIELAB) to the skin of an aligned photo.

    aligned: (S, S, 3) uint8 RGB warped to the face template (docs/contracts.md). Samples the
    cheeks and forehead, where the template guarantees skin, and uses the median to ignore hair,
    glasses and highlights. Returns (parameter value, measured sRGB colour in [0, 1]).
    """
    from skimage.color import rgb2lab

    size = aligned.shape[0]
    if aligned.ndim != 3 or aligned.shape[1] != size or aligned.shape[2] != 3:
        raise ValueError(f"estimate_skin_tone: expected an aligned square RGB image, got shape {aligned.shape}")
    patches = [(0.33, 0.58), (0.67, 0.58), (0.50, 0.30)]  # cheeks and mid-forehead, template fractions
    half = max(1, int(0.04 * size))
    pixels = (
        np.concatenate(
            [
                aligned[
                    int(y * size) - half : int(y * size) + half, int(x * size) - half : int(x * size) + half
                ].reshape(-1, 3)
                for x, y in patches
            ]
        )
        / 255.0
    )
    measured = np.median(pixels, axis=0)
    distances = np.linalg.norm(rgb2lab(SKIN_PALETTE[None])[0] - rgb2lab(measured[None, None])[0, 0], axis=1)
    entry = int(distances.argmin())
    return palette_value(SKIN_PALETTE, entry), measured
