"""The character creator: parameter table, bone-driven shape, appearance, and that each slider stays in its region."""

import numpy as np
import pytest
from scipy.spatial import cKDTree

from game import parameters as P
from game.appearance import SKIN_PALETTE, Appearance, estimate_skin_tone, palette_colour, palette_value
from game.face import REGIONS
from game.head import Part, build_head
from game.rig import Rig

SHAPE = [p for p in P.table() if p.kind == "shape"]
APPEARANCE = [p for p in P.table() if p.kind == "appearance"]
HAIR_KIND = [p for p in P.table() if p.kind == "hair"]

# Where each appearance slider may change colours: region names (dilated by DILATION) and/or whole parts.
# Hair-like parts (hair and beard shells, brows, lashes) blend into the skin under them, so skin colours reach them.
SKIN_PARTS = (Part.FACE, Part.SKULL, Part.NECK, Part.EAR, Part.HAIR, Part.BROW, Part.LASH)
HAIR = ("head", "forehead", "cheeks", "jaw", Part.HAIR)
APPEARANCE_REGIONS = {
    "skin_tone": SKIN_PARTS,
    "skin_undertone": SKIN_PARTS,
    "skin_shine": SKIN_PARTS,
    "skin_redness": ("cheeks", "nose", "ears", "mouth", "eyes", "jaw", Part.HAIR, Part.BROW, Part.LASH),
    "freckles": ("nose", "cheeks", Part.HAIR),
    "under_eye_shade": ("eyes", "cheeks", Part.LASH),
    "iris_size": (Part.EYEBALL,),
    "pupil_size": (Part.EYEBALL,),
    "eye_color": (Part.EYEBALL,),
    "eye_color_brightness": (Part.EYEBALL,),
    "sclera_tint": (Part.EYEBALL,),
    "limbal_ring": (Part.EYEBALL,),
    "brow_thickness": (Part.BROW,),
    "brow_density": (Part.BROW,),
    "brow_color": (Part.BROW, Part.LASH),  # lashes are tinted by the brows' colour
    # Sideburns reach the sides of the face; stubble and the beard take the hair colour.
    "hair_color": ("head", "forehead", "cheeks", "jaw", "mouth", "nose", Part.HAIR, Part.BROW, Part.LASH),
    "hair_redness": HAIR + ("mouth", "nose", Part.BROW, Part.LASH),
    "hair_saturation": HAIR + ("mouth", "nose", Part.BROW, Part.LASH),
    "hair_sheen": (Part.HAIR,),
    "lip_color": ("mouth", Part.HAIR),
    "lip_darkness": ("mouth", Part.HAIR),
    "lip_line": ("mouth", Part.HAIR),
    "lip_saturation": ("mouth", Part.HAIR),
    "blush": ("cheeks", Part.HAIR),
    "blush_hue": ("cheeks", Part.HAIR),
    "eyeshadow": ("eyes", Part.BROW, Part.LASH),
    "eyeshadow_color": ("eyes", Part.BROW, Part.LASH),
    "eyeliner": ("eyes", Part.LASH),
    "contour": ("cheeks", "jaw", Part.HAIR),
    "stubble": ("jaw", "mouth", "cheeks", Part.HAIR),
    "stubble_extent": ("jaw", "mouth", "cheeks", Part.HAIR),
    "moustache": ("mouth", "nose", Part.HAIR),
}
DILATION = 0.15  # inter-ocular units: a slider may spill this far past its region's border


@pytest.fixture(scope="module")
def head():
    return build_head()


@pytest.fixture(scope="module")
def rig(head):
    return Rig(head)


@pytest.fixture(scope="module")
def appearance(head):
    return Appearance(head)


def one_hot(index, value):
    params = np.zeros(P.NUM_PARAMETERS, np.float32)
    params[index] = value
    return params


def test_table_has_267_named_grouped_parameters():
    table = P.table()
    assert len(table) == 267 and len({p.name for p in table}) == 267
    assert [p.index for p in table] == list(range(267))
    assert {"head", "forehead", "brows", "eyes", "nose", "cheeks", "mouth", "jaw", "ears", "appearance"} <= {
        p.group for p in table
    }
    assert len(SHAPE) > len(APPEARANCE) > 20
    assert all(p.meaning for p in table)
    assert set(APPEARANCE_REGIONS) == {p.name for p in APPEARANCE}
    assert P.TABLE_VERSION.startswith("v2-")


@pytest.mark.parametrize(
    "bad, message",
    [
        (np.zeros(266), "expected 267 parameters"),
        (np.full(267, np.nan), "not finite"),
        (np.full(267, 3.0), "outside"),
    ],
)
def test_validate_rejects_bad_vectors_with_the_source_named(bad, message):
    with pytest.raises(ValueError, match=message) as error:
        P.validate(bad, "my_params.npy")
    assert "my_params.npy" in str(error.value)


def test_neutral_parameters_give_the_neutral_head(head, rig):
    assert np.allclose(rig.deform(np.zeros(267)), head.vertices)


def test_neutral_head_is_symmetric(head):
    mirrored = head.vertices[head.twin] * np.array([-1, 1, 1])
    assert np.abs(mirrored - head.vertices).max() < 0.05
    # The eyes are where docs/contracts.md puts them: origin between them, one unit apart.
    left, right = head.anchors["eye_left"], head.anchors["eye_right"]
    assert left[0] > 0 > right[0]


@pytest.mark.parametrize("param", SHAPE, ids=lambda p: p.name)
def test_shape_slider_moves_its_region_and_only_there(param, head, rig):
    low = rig.deform(one_hot(param.index, P.LOW))
    high = rig.deform(one_hot(param.index, P.HIGH))
    moved = np.linalg.norm(high - low, axis=1)
    assert moved.max() > 0.01, f"{param.name} barely moves the mesh ({moved.max():.4f} iod)"
    carried = np.isin(head.part, [Part.EYEBALL, Part.EAR, Part.MOUTH])
    allowed = (rig.region_weight[param.group] > 0) | carried
    allowed |= (rig.attachment @ allowed.astype(float)) > 0  # hair-like parts ride on the skin they sit on
    assert moved[~allowed].max(initial=0) < 1e-9, f"{param.name} moves vertices outside {param.group}"
    # Most of the motion is inside the group's own region (head: everything).
    if param.group != "head":  # on the skin itself: hair-like parts ride along wherever they sit
        in_region = head.region == REGIONS.index(param.group)
        skin = ~np.isin(head.part, [Part.HAIR, Part.BROW, Part.LASH])
        assert moved[in_region & skin].sum() > 0.4 * moved[skin].sum(), (
            f"{param.name} moves mostly outside {param.group}"
        )


def test_mirrored_bones_move_both_sides_symmetrically(head, rig):
    params = np.zeros(267, np.float32)
    for p in SHAPE:
        if not p.channel.startswith(("asym", "shift")) and not (
            p.channel in ("rz",) and not rig.bones[p.bone].mirrored
        ):
            params[p.index] = np.random.default_rng(p.index).uniform(-2.5, 2.5)
    moved = rig.deform(params)
    mirrored = moved[head.twin] * np.array([-1, 1, 1])
    assert np.abs(mirrored - moved).max() < 0.08


def test_extreme_faces_stay_plausible(head, rig):
    """Random corner-of-the-cube faces: bounded motion, and no face triangle turned inside out."""
    rng = np.random.default_rng(0)
    face = head.part == Part.FACE
    triangles = head.triangles[np.all(face[head.triangles], axis=1)]

    def normals(v):
        n = np.cross(v[triangles[:, 1]] - v[triangles[:, 0]], v[triangles[:, 2]] - v[triangles[:, 0]])
        return n / np.linalg.norm(n, axis=1, keepdims=True)

    neutral = normals(head.vertices)
    # Typical faces of the paper's prior: essentially no folds. Every slider at an end at once: a few
    # small folds (nostril wings, lip corners) are allowed, no explosion.
    for sample, limit in (
        (lambda: rng.uniform(P.LOW, P.HIGH, 267), 0.01),
        (lambda: rng.choice([P.LOW, P.HIGH], 267), 0.06),
    ):
        for _ in range(10):
            v = rig.deform(sample().astype(np.float32))
            assert np.abs(v - head.vertices)[face].max() < 0.9
            flipped = (normals(v) * neutral).sum(1) < 0
            assert flipped.mean() < limit, f"{flipped.mean():.2%} of face triangles flipped"


@pytest.mark.parametrize("param", APPEARANCE, ids=lambda p: p.name)
def test_appearance_slider_changes_only_colours_of_its_region(param, head, rig, appearance):
    low = one_hot(param.index, P.LOW)
    high = one_hot(param.index, P.HIGH)
    assert np.array_equal(rig.deform(low), rig.deform(high)), "appearance sliders must not move the mesh"
    colour_low, gloss_low = appearance(low)
    colour_high, gloss_high = appearance(high)
    changed = (np.abs(colour_high - colour_low).max(1) > 1e-4) | (np.abs(gloss_high - gloss_low) > 1e-4)
    assert changed.any(), f"{param.name} changes nothing"
    targets = APPEARANCE_REGIONS[param.name]
    allowed = np.isin(head.part, [t for t in targets if isinstance(t, Part)])
    regions = [REGIONS.index(t) for t in targets if not isinstance(t, Part)]
    if regions:
        core = np.isin(head.region, regions) & ~np.isin(head.part, [Part.HAIR, Part.BROW, Part.LASH])
        distance, _ = cKDTree(head.vertices[core]).query(head.vertices)
        allowed |= distance <= DILATION
    assert not (changed & ~allowed).any(), (
        f"{param.name} recolours {int((changed & ~allowed).sum())} vertices outside {targets}"
    )


def test_skin_palette_is_continuous_and_estimation_snaps_to_an_entry():
    assert np.allclose(palette_colour(SKIN_PALETTE, P.LOW), SKIN_PALETTE[0])
    assert np.allclose(palette_colour(SKIN_PALETTE, P.HIGH), SKIN_PALETTE[-1])
    between = palette_colour(SKIN_PALETTE, (palette_value(SKIN_PALETTE, 3) + palette_value(SKIN_PALETTE, 4)) / 2)
    assert np.allclose(between, (SKIN_PALETTE[3] + SKIN_PALETTE[4]) / 2)
    for entry in (0, 4, 9):
        photo = np.zeros((128, 128, 3), np.uint8) + (SKIN_PALETTE[entry] * 255).astype(np.uint8)
        value, _ = estimate_skin_tone(photo)
        assert value == pytest.approx(palette_value(SKIN_PALETTE, entry))
    with pytest.raises(ValueError, match="aligned square RGB"):
        estimate_skin_tone(np.zeros((64, 32, 3), np.uint8))


def test_every_parameter_is_visible_at_256px():
    """No fake parameters: each slider changes the 256 px game screenshot (docs: `python -m game sensitivity`)."""
    from game.sensitivity import VISIBILITY_THRESHOLD, measure

    # 4 random faces is a noisy estimate (a pupil is invisible in a dark-brown iris), so this guards
    # against fake sliders at half the threshold; game/data/sensitivity.csv holds the 8-face table.
    values = measure(size=256, faces=4, seed=1, progress=False)
    invisible = {
        P.table()[i].name: round(float(values[i]), 4) for i in np.flatnonzero(values < VISIBILITY_THRESHOLD / 2)
    }
    assert not invisible, f"invisible at 256 px: {invisible}"
