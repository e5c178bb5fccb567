"""Colours of the character: skin, eyes, brows, lashes, hair, beard, lips, make-up, stubble and clothes.

Each appearance parameter blends a colour into a fixed per-vertex mask of its own region (masks are
computed once from the neutral head), so it changes colours only, and only there. Besides colour and gloss,
every vertex gets a material (game.detail): how much skin shading, stubble stipple, strand streaks and grain
the renderer adds per pixel. Hair-like parts (game.hair) take the colour of the skin under them where they
are sparse, so their edges melt into the skin.
Over 300 lines on purpose: one colour model, its masks and its palettes read together.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from scipy.spatial import cKDTree

from game import hair as H
from game import parameters as P
from game import topology
from game.head import Head, Part
from game.masks import bump, inside_polygon_2d, polyline_distance, smoothstep

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
SCLERA = np.array([0.87, 0.84, 0.81])  # eye whites in photos are greyish, never paper white
PUPIL = np.array([0.03, 0.03, 0.03])
MOUTH_INSIDE = np.array([0.28, 0.08, 0.08])
LASH = np.array([0.05, 0.04, 0.04])
GAME_CLOTHING = np.array([0.23, 0.26, 0.32])  # the creator's default top: charcoal blue
# Lips without make-up: the skin, redder and darker (so dark skin gets dark lips, light skin pink ones).
NATURAL_LIP = np.array([0.80, 0.54, 0.54])
SKIN_PARTS = (Part.FACE, Part.SKULL, Part.NECK, Part.EAR)


class Shade(NamedTuple):
    """Per-vertex colour (V, 3), gloss (V,) and material (V, 4: skin, stipple, streak, grain), float32."""

    colours: np.ndarray
    gloss: np.ndarray
    material: np.ndarray


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


def _under(points: np.ndarray, skin_points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(indices (n, 3), weights (n, 3)): the 3 skin vertices under each point, inverse-distance weighted."""
    distance, nearest = cKDTree(skin_points).query(points, k=3)
    weight = 1.0 / (distance + 1e-3) ** 2
    return nearest, weight / weight.sum(1, keepdims=True)


class Appearance:
    """Per-vertex colour, gloss and material of a head for given appearance (and hair) parameters."""

    def __init__(self, head: Head):
        self.head = head
        self.sliders = [(p.name, p.index) for p in P.table() if p.kind in ("appearance", "hair")]  # once
        v, part = head.vertices, head.part
        self.skin = np.flatnonzero(np.isin(part, SKIN_PARTS))
        s = v[self.skin]  # masks below live on the skin vertices only
        face = part[self.skin] == Part.FACE
        twin = head.twin
        lm = v[:468]

        # Lips: inside the outer lip contour; the inner contour (where the lips meet) darker.
        outer = [61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291, 409, 270, 269, 267, 0, 37, 39, 40, 185]
        inner = [78, 95, 88, 178, 87, 14, 317, 402, 318, 324, 308, 415, 310, 311, 312, 13, 82, 81, 80, 191]
        inside = inside_polygon_2d(s, lm[outer]) & face
        edge, _ = polyline_distance(s, np.concatenate([lm[outer], lm[outer[:1]]]))
        meet, _ = polyline_distance(s, np.concatenate([lm[inner], lm[inner[:1]]]))
        lips = np.where(inside, smoothstep(edge / 0.022 + 0.25), 0.0)
        self.lips = _layer(lips)
        self.lip_edge = _layer(np.where(inside, np.exp(-((edge / 0.025) ** 2)), 0.0))
        self.lip_meet = _layer(lips * np.exp(-((meet / 0.025) ** 2)))
        self.upper_lip = (s[self.lips.index, 1] > (lm[13, 1] + lm[14, 1]) / 2)[:, None]

        eye_loops = [lm[topology.loop("LEFT_EYE")], lm[topology.loop("RIGHT_EYE")]]
        eye_distance = np.minimum(*[cKDTree(loop).query(s)[0] for loop in eye_loops])
        above_eye = np.maximum(
            *[(s[:, 1] - loop[:, 1].mean()) * (np.abs(s[:, 0] - loop[:, 0].mean()) < 0.35) for loop in eye_loops]
        )
        self.eyeshadow = _layer(face * smoothstep((0.22 - eye_distance) / 0.1) * smoothstep(above_eye / 0.05))
        self.eyeliner = _layer(face * np.exp(-((eye_distance / 0.03) ** 2)))
        lash_line = np.exp(-((eye_distance / 0.018) ** 2)) * smoothstep(above_eye / 0.02 + 0.5)
        self.lash_line = _layer(face * lash_line)
        # The fold above the upper lid, in shadow: a natural darkening, 12% at its deepest.
        crease = np.exp(-(((eye_distance - 0.07) / 0.03) ** 2)) * smoothstep(above_eye / 0.03)
        self.lid_crease = _layer(face * crease)
        self.under_eye = _layer(face * bump(s, lm[[253, twin[253], 254, twin[254]]] - [0, 0.05, 0], 0.16))
        self.blush = _layer(face * bump(s, lm[[425, twin[425]]] + [0, 0.05, 0], 0.32))
        self.contour = _layer(face * bump(s, lm[[411, twin[411], 379, twin[379]]], 0.3))
        ear = part[self.skin] == Part.EAR
        self.redness = _layer(np.maximum(bump(s, lm[[425, twin[425], 1, 4]], 0.4) * face, ear * 0.6))
        nose_cheeks = bump(s, lm[[4, 5, 195, 425, twin[425], 330, twin[330]]], 0.35) * face
        # Freckles: a fixed per-vertex pattern (seeded), so a character's freckles never move.
        pattern = np.random.default_rng(1234).random(len(v))[self.skin]
        self.freckles = _layer(nose_cheeks * (pattern > 0.8))
        lower_face = face * (1 - lips) * (s[:, 1] < lm[2, 1])
        self.stubble_base = _layer(lower_face * smoothstep(np.abs(s[:, 0]) / 0.1 + 1))
        self.stubble_height = s[self.stubble_base.index, 1]
        moustache = face * (1 - lips) * bump(s, (lm[[0]] + lm[[2]]) / 2, 0.3) * np.exp(-((s[:, 0] / 0.45) ** 4))
        self.moustache = _layer(moustache)
        self.nose_tip = lm[1]

        # Hair painted on the scalp (under the shell) above the hairline; a parting shows skin through it.
        self.scalp = np.isin(part[self.skin], (Part.FACE, Part.SKULL))
        self.forehead_top = lm[10, 1]
        # Light: the neutral head's cavities (game.head), redder in shadow as skin is; clothes.
        cavity = head.cavity[self.skin][:, None]
        self.cavity_tint = 1 - (1 - cavity) * np.array([0.75, 0.95, 1.0])
        self.clothing = head.clothing[self.skin]
        collar = head.clothing[self.skin] * np.exp(-(((s[:, 1] + 2.25) / 0.09) ** 2)) * (s[:, 2] > -1.3)
        folds = np.sin(7.0 * s[:, 0] + 3.0 * np.sin(2.3 * s[:, 1])) * smoothstep((-2.6 - s[:, 1]) / 0.5)
        self.cloth_shade = ((1 - 0.25 * collar) * (1 + 0.06 * folds) * cavity[:, 0])[:, None]
        self.material_skin = np.stack(
            [1 - self.clothing, np.zeros(len(s)), np.zeros(len(s)), 1 - 0.3 * self.clothing], 1
        )

        # Eyes: the angle from each eyeball's front pole; lids shade the top and the corners of the eyeball.
        self.eyeball = np.flatnonzero(part == Part.EYEBALL)
        self.eye_angle = head.eyeball_angle[self.eyeball]
        e = v[self.eyeball]
        centre = np.where(e[:, :1] > 0, head.anchors["eye_left"], head.anchors["eye_right"])
        rel = (e - centre) / 0.21
        self.eye_shadow = (1 - 0.5 * smoothstep((rel[:, 1] + 0.05) / 0.35)) * (
            1 - 0.35 * smoothstep((np.abs(rel[:, 0]) - 0.25) / 0.35)
        )
        self.mouth = np.flatnonzero(part == Part.MOUTH)

        # Hair-like parts and the skin under them.
        rig = head.hair
        skin_points = s
        self.scalp_index = rig.scalp_index
        self.scalp_row = head.uv[rig.scalp_index, 1] / 1.5  # 0 at the crown .. 1 at the tips
        self.scalp_hair = rig.scalp
        self.scalp_under = _under(head.attached_to[np.isin(head.attached, rig.scalp_index)], skin_points)
        self.beard_index = rig.beard_index
        self.beard_under = _under(rig.beard.root, skin_points)
        self.beard = rig.beard
        self.brow_index = np.concatenate([index for index, _ in rig.brows])
        brow_root = np.concatenate([strip.root for _, strip in rig.brows])
        self.brow_under = _under(brow_root, skin_points)
        self.brow_along = np.concatenate([strip.along for _, strip in rig.brows])  # 0 = outer end
        self.brow_across = np.concatenate([strip.across for _, strip in rig.brows]) * H.BROW_HALF_HEIGHT
        self.lash_index = np.concatenate([index for index, _ in rig.lashes])
        lash_root = np.concatenate([strip.root for _, strip in rig.lashes])
        self.lash_under = _under(lash_root, skin_points)
        self.lash_tip = np.concatenate([strip.across for _, strip in rig.lashes])

    def hair_mask(self, hairline: float, sideburns: float, parting: float) -> np.ndarray:
        """Where the scalp is painted with the hair colour (skin vertices), for hair sliders / 2.5."""
        s = self.head.vertices[self.skin]
        line = H.hairline_height(s, hairline, sideburns, self.forehead_top)
        parting_line = np.exp(-(((s[:, 0] - 0.45 * parting) / 0.03) ** 2))
        parting_line *= smoothstep((s[:, 1] - self.forehead_top + 0.1) / 0.3) * (s[:, 2] > -0.8)
        return self.scalp * smoothstep((s[:, 1] - line) / 0.06) * (1 - 0.35 * parting_line)

    def __call__(self, params: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(colours (V, 3) float32 in [0, 1], gloss (V,) float32) for one parameter vector."""
        shade = self.shade(params)
        return shade.colours, shade.gloss

    def shade(self, params: np.ndarray, clothing=None) -> Shade:
        """Colour, gloss and material of every vertex; `clothing` (RGB in [0, 1]) recolours the clothes."""
        value = {name: float(params[index]) for name, index in self.sliders}
        f = {k: x / P.HIGH for k, x in value.items()}  # -1 .. 1
        # Amount-like sliders (make-up, freckles, stubble): 0 at -2.5, 0.25 at the neutral 0, 1 at +2.5,
        # so the default face is nearly bare while every value still changes the picture.
        amount = {k: ((x + 1) / 2) ** 2 for k, x in f.items()}
        n = self.head.num_vertices
        colour = np.zeros((n, 3))
        gloss = np.full(n, 0.4)
        material = np.zeros((n, 4))

        skin = palette_colour(SKIN_PALETTE, value["skin_tone"])
        skin = skin * (1 + 0.06 * f["skin_undertone"] * np.array([0.3, 0.4, -1.0]))
        base = np.tile(skin, (len(self.skin), 1))
        _paint(base, self.redness, np.array([0.85, 0.35, 0.3]), 0.25 * amount["skin_redness"])
        _paint(base, self.under_eye, skin * 0.62, 0.7 * amount["under_eye_shade"])
        _paint(base, self.freckles, skin * 0.6 * np.array([1.0, 0.85, 0.7]), amount["freckles"])
        _paint(base, self.contour, skin * 0.72, 0.7 * amount["contour"])
        blush = (
            np.array([1.0, 0.62, 0.38]) * (1 - amount["blush_hue"]) + np.array([0.9, 0.3, 0.6]) * amount["blush_hue"]
        )
        _paint(base, self.blush, blush, 0.6 * amount["blush"])
        hair = _hair_colour(value, f)
        stubble_colour = (hair * 0.5 + skin * 0.5) * np.array([0.62, 0.62, 0.68])  # a darker, cooler shadow
        extent = smoothstep((self.nose_tip[1] - 0.45 + 0.35 * f["stubble_extent"] - self.stubble_height) / 0.15)
        stubble = Layer(self.stubble_base.index, self.stubble_base.weight * extent * amount["stubble"])
        _paint(base, stubble, stubble_colour, 0.8)
        _paint(base, self.moustache, stubble_colour * 0.6, amount["moustache"])
        _paint(base, self.lid_crease, np.zeros(3), 0.12)
        _paint(base, self.lash_line, skin * 0.45, 0.5)
        shadow = palette_colour(EYESHADOW_PALETTE, value["eyeshadow_color"])
        _paint(base, self.eyeshadow, shadow, 0.7 * amount["eyeshadow"])
        _paint(base, self.eyeliner, np.array([0.05, 0.04, 0.04]), 0.9 * amount["eyeliner"])

        painted = palette_colour(LIP_PALETTE, value["lip_color"]) * (1 - 0.25 * f["lip_darkness"])
        lip = 0.5 * skin * NATURAL_LIP + 0.5 * painted
        grey = lip.mean()
        lip = grey + (lip - grey) * (1 + 0.5 * f["lip_saturation"])
        _paint(base, self.lips, lip * (1 - 0.1 * self.upper_lip), 1.0)
        _paint(base, self.lip_edge, lip * 0.55, 0.15 + 0.75 * amount["lip_line"])
        _paint(base, self.lip_meet, lip * 0.35, 0.8)
        base = _mix(base, hair * 0.85, self.hair_mask(f["hair_hairline"], f["sideburn_length"], f["hair_parting"]))
        skin_colour = base * self.cavity_tint  # what hair-like parts over the skin blend into
        clothes = GAME_CLOTHING if clothing is None else np.asarray(clothing, float)
        colour[self.skin] = _mix(skin_colour, clothes * self.cloth_shade, self.clothing)
        gloss[self.skin] = (0.3 + 0.3 * f["skin_shine"]) * (1 - self.clothing) + 0.08 * self.clothing
        gloss[self.skin[self.lips.index]] += 0.9 * self.lips.weight
        material[self.skin] = self.material_skin
        material[self.skin[stubble.index], 1] += 1.2 * stubble.weight
        material[self.skin[self.moustache.index], 1] += amount["moustache"] * self.moustache.weight
        material[:, 1] = np.minimum(material[:, 1], 1.0)

        self._eyes(colour, gloss, material, value, f, amount)
        colour[self.mouth] = MOUTH_INSIDE
        self._hair_parts(colour, gloss, material, skin_colour, hair, value, f, amount)
        return Shade(
            np.clip(colour, 0, 1).astype(np.float32),
            np.clip(gloss, 0, 3).astype(np.float32),
            material.astype(np.float32),
        )

    def _eyes(self, colour, gloss, material, value, f, amount) -> None:
        angle = self.eye_angle
        iris_angle = 0.5 * (1 + 0.15 * f["iris_size"])
        pupil_angle = 0.19 * (1 + 0.5 * f["pupil_size"])
        iris = palette_colour(EYE_PALETTE, value["eye_color"]) * (1 + 0.3 * f["eye_color_brightness"])
        iris = iris[None] * (0.7 + 0.45 * smoothstep((iris_angle - angle) / 0.25))[:, None]  # lighter inside
        sclera = SCLERA * (1 - 0.4 * (1 - amount["sclera_tint"]) * np.array([0.0, 0.5, 1.0]))
        in_iris = smoothstep((iris_angle - angle) / 0.035)[:, None]
        in_pupil = smoothstep((pupil_angle - angle) / 0.03)[:, None]
        ring = np.exp(-(((angle - iris_angle) / 0.07) ** 2))[:, None] * (0.1 + 0.85 * amount["limbal_ring"])
        eye = sclera * (1 - in_iris) + iris * in_iris
        eye = eye * (1 - ring) + PUPIL * ring
        eye = eye * (1 - in_pupil) + PUPIL * in_pupil
        colour[self.eyeball] = eye * self.eye_shadow[:, None]
        gloss[self.eyeball] = 1.6
        material[self.eyeball, 2] = 0.8 * in_iris[:, 0] * (1 - in_pupil[:, 0])  # iris fibres
        material[self.eyeball, 3] = 0.4 * (1 - in_iris[:, 0])  # faint veins

    def _hair_parts(self, colour, gloss, material, skin_colour, hair, value, f, amount) -> None:
        """Scalp hair, beard, brows and lashes: strand streaks over colours that melt into the skin under them."""
        sheen = 0.5 + 0.45 * f["hair_sheen"]
        values = H.HairValues(**{field: f[name] for name, field in H.HAIR_SLIDERS.items()})
        cover = self.scalp_hair.cover(values)
        strands = hair * np.clip(0.72 + 0.38 * self.scalp_row, 0, 1.1)[:, None]
        colour[self.scalp_index] = _mix(_blend(skin_colour, *self.scalp_under), strands, 0.35 + 0.65 * cover)
        gloss[self.scalp_index] = sheen * cover
        material[self.scalp_index, 2] = cover

        under = _blend(skin_colour, *self.beard_under)
        cover = smoothstep((self.beard.offset(f["beard_length"]) - 0.005) / 0.05)
        colour[self.beard_index] = _mix(under, hair * 0.8, cover * 0.95)
        gloss[self.beard_index] = 0.3 + 0.3 * cover
        material[self.beard_index, 2] = cover

        brow = palette_colour(HAIR_PALETTE, value["brow_color"]) * 0.7
        half = (0.05 + 0.032 * f["brow_thickness"]) * (0.55 + 0.45 * np.sqrt(self.brow_along))
        cover = smoothstep((half - np.abs(self.brow_across)) / 0.022 + 0.5)
        cover *= smoothstep((self.brow_along - 0.04) / 0.2) * smoothstep((0.96 - self.brow_along) / 0.06)
        cover *= 0.55 + 0.43 * amount["brow_density"]
        colour[self.brow_index] = _mix(_blend(skin_colour, *self.brow_under), brow, cover)
        gloss[self.brow_index] = 0.3
        material[self.brow_index, 2] = cover
        material[self.brow_index, 0] = 1 - cover

        lash = LASH + 0.15 * brow
        colour[self.lash_index] = _mix(np.tile(lash, (len(self.lash_index), 1)), _blend(skin_colour, *self.lash_under),
                                       0.45 * self.lash_tip)  # fmt: skip
        gloss[self.lash_index] = 0.2
        material[self.lash_index, 2] = 1.0


class Layer(NamedTuple):
    """A per-vertex mask stored sparsely: the skin vertices it touches and its weight there (0..1]."""

    index: np.ndarray
    weight: np.ndarray


def _layer(mask: np.ndarray) -> Layer:
    index = np.flatnonzero(mask > 0)
    return Layer(index, mask[index].astype(np.float64))


def _paint(base: np.ndarray, layer: Layer, colour, strength: float) -> None:
    """Blend `colour` ((3,) or one row per layer vertex) into `base` over the layer, in place."""
    if strength <= 0 or not len(layer.index):
        return
    weight = np.minimum(layer.weight * strength, 1.0)[:, None]
    rows = base[layer.index]
    base[layer.index] = rows + (colour - rows) * weight


def _hair_colour(value: dict, f: dict) -> np.ndarray:
    hair = palette_colour(HAIR_PALETTE, value["hair_color"])
    if f["hair_redness"] > 0:
        hair = hair * (1 + 0.3 * f["hair_redness"] * np.array([1.0, -0.1, -0.5]))
    else:
        hair = _mix(hair[None], np.full(3, hair.mean()), np.array([-0.6 * f["hair_redness"]]))[0]
    return hair.mean() + (hair - hair.mean()) * (1 + 0.5 * f["hair_saturation"])


def _blend(colours: np.ndarray, nearest: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """Inverse-distance blend of skin colours (the skin under a hair-like part)."""
    return (colours[nearest] * weight[..., None]).sum(1)


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
