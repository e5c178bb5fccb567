"""Engine v2's looks: each hair, lash and beard slider changes the picture where its name says and nowhere else,
continuously; the clothes take the photo's colour; the materials fit the renderer's packing; the sheet shows both
priors; the engine comparisons refuse a reference that is not an engine."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from game import parameters as P
from game.engine import Game
from game.head import Part

REPO = Path(__file__).resolve().parents[1]
SIZE = 128
HAIR_SLIDERS = [p.name for p in P.table() if p.kind == "hair"]

# Image boxes as fractions (x0, x1, y0, y1) of the picture, x right, y down (the template puts the eyes at
# y = 0.44 and the mouth corners at 0.70, docs/contracts.md section 2).
TOP = (0.0, 1.0, 0.0, 0.36)
FOREHEAD = (0.3, 0.7, 0.2, 0.4)
EYES = (0.28, 0.72, 0.38, 0.5)
SIDES_BELOW_EARS = [(0.0, 0.27, 0.55, 1.0), (0.73, 1.0, 0.55, 1.0)]
LOWER_FACE = (0.3, 0.7, 0.62, 0.92)
CENTRE_FACE = (0.33, 0.67, 0.47, 0.8)  # nose, mouth, chin: no hair reaches it
BELOW_EYES = (0.0, 1.0, 0.52, 1.0)
ABOVE_EYES = (0.0, 1.0, 0.0, 0.42)
OUTSIDE_EYES = [(0.0, 1.0, 0.0, 0.34), (0.0, 1.0, 0.54, 1.0), (0.0, 0.22, 0.0, 1.0), (0.78, 1.0, 0.0, 1.0)]

# slider: (boxes where the picture must change, boxes where it must not, other sliders set for the base face)
WHERE = {
    "hair_volume": ([TOP], [CENTRE_FACE], {}),
    "hair_length": (SIDES_BELOW_EARS, [CENTRE_FACE, FOREHEAD], {"hair_fringe": -2.5}),
    "hair_fringe": ([FOREHEAD], [BELOW_EYES], {}),
    "hair_parting": ([TOP], [BELOW_EYES], {"hair_fringe": 1.0}),
    "hair_hairline": ([TOP], [CENTRE_FACE], {"hair_fringe": -2.5}),  # temples and nape too
    "sideburn_length": (  # the temples' hair may follow the sideburns; the forehead between them does not
        [(0.0, 0.3, 0.3, 0.6), (0.7, 1.0, 0.3, 0.6)],
        [CENTRE_FACE, (0.35, 0.65, 0.2, 0.4)],
        {"hair_length": -2.5},
    ),
    "eyelash_length": ([EYES], OUTSIDE_EYES, {}),
    "beard_length": ([LOWER_FACE], [ABOVE_EYES], {}),  # up the cheeks to the sideburns
}


@pytest.fixture(scope="module")
def game():
    return Game(SIZE)


def face(**values) -> np.ndarray:
    params = np.zeros(P.NUM_PARAMETERS, np.float32)
    for name, value in values.items():
        params[P.index_of(name)] = value
    return params


def box_change(diff: np.ndarray, box) -> np.ndarray:
    x0, x1, y0, y1 = (int(round(v * SIZE)) for v in box)
    return diff[y0:y1, x0:x1]


def test_the_hair_sliders_are_the_ones_documented():
    assert set(HAIR_SLIDERS) == set(WHERE)


@pytest.mark.parametrize("name", HAIR_SLIDERS)
def test_hair_slider_reshapes_only_its_own_geometry(game, name):
    """A hair slider moves the hair shell (or the lashes), never the skin, eyes or clothes."""
    low, high = game.vertices(face(**{name: P.LOW})), game.vertices(face(**{name: P.HIGH}))
    moved = np.linalg.norm(high - low, axis=1) > 1e-6
    own = (Part.LASH,) if name == "eyelash_length" else (Part.HAIR,)
    assert moved.sum() > 10, f"{name} barely moves anything"
    assert not (moved & ~np.isin(game.head.part, own)).any(), f"{name} moves vertices outside {own}"


@pytest.mark.parametrize("name", HAIR_SLIDERS)
def test_hair_slider_changes_the_picture_where_its_name_says(game, name):
    must, must_not, base = WHERE[name]
    low = game.render(face(**base, **{name: P.LOW})).astype(int)
    high = game.render(face(**base, **{name: P.HIGH})).astype(int)
    diff = np.abs(high - low).max(-1)
    for box in must:
        changed = (box_change(diff, box) > 25).sum()
        assert changed > 0.01 * box_change(diff, box).size, f"{name}: only {changed} pixels change in {box}"
    for box in must_not:
        assert box_change(diff, box).max() <= 3, f"{name} changes pixels in {box} (max {box_change(diff, box).max()})"


@pytest.mark.parametrize("name", HAIR_SLIDERS)
def test_hair_slider_is_continuous(game, name):
    """Twenty equal steps across the range each change the picture by a small part of the whole change, and a
    step of 0.01 by next to nothing: no jumps."""
    _, _, base = WHERE[name]
    values = np.linspace(P.LOW, P.HIGH, 21)
    frames = [game.render(face(**base, **{name: v})).astype(float) for v in values]
    steps = np.array([np.abs(b - a).mean() for a, b in zip(frames, frames[1:])])
    whole = np.abs(frames[-1] - frames[0]).mean()
    assert whole > 0.2, f"{name}: the whole range changes {whole:.3f} levels per pixel"
    assert steps.max() < 0.35 * max(steps.sum(), whole), f"{name}: one step holds {steps.max() / steps.sum():.0%}"
    middle = values[10] + 0.3
    tiny = np.abs(
        game.render(face(**base, **{name: middle + 0.01})).astype(float)
        - game.render(face(**base, **{name: middle})).astype(float)
    ).mean()
    assert tiny < 0.1 * whole + 0.02, f"{name}: a 0.01 step changes {tiny:.3f} levels per pixel"


def test_clothes_take_the_photo_colour_and_nothing_else(game):
    params = face()
    red = game.appearance.shade(params, clothing=(0.9, 0.1, 0.1)).colours
    blue = game.appearance.shade(params, clothing=(0.1, 0.1, 0.9)).colours
    changed = np.abs(red - blue).max(1) > 1e-4
    assert changed.sum() > 100
    assert (game.head.clothing[changed] > 0).all() and (game.head.part[changed] == Part.NECK).all()


def test_photo_clothes_vary_between_photos():
    from game.photo_style import sample_photo_conditions

    colours = np.array([sample_photo_conditions(np.random.default_rng(seed)).clothing for seed in range(40)])
    assert colours.min() >= 0 and colours.max() <= 1 and colours.std(0).min() > 0.1


@pytest.mark.parametrize("prior", ["uniform", "realistic"])
def test_materials_fit_the_renderers_two_float_packing(game, prior):
    """game.render packs (skin, stipple, streak, grain) into two floats; exact where stipple lies on full skin and
    grain beyond the skin's only where there are no streaks (the iris edge blends both, by design)."""
    for row in P.sample_prior(np.random.default_rng(3), 5, prior):
        material = game.appearance.shade(row).material.astype(float)
        skin, stipple, streak, grain = material.T
        assert material.min() >= 0 and material.max() <= 1
        assert (skin[stipple > 0] == 1).all()
        eyeball = game.head.part == Part.EYEBALL
        assert not ((grain - skin > 0) & (streak > 0) & ~eyeball).any()


def test_sheet_shows_both_priors_side_by_side(tmp_path):
    from game.__main__ import main

    main(["sheet", "--out", str(tmp_path), "--size", "32", "--count", "2", "--columns", "2"])
    for style in ("game", "photo"):
        sheet = cv2.imread(str(tmp_path / f"contact_{style}.png"))
        assert sheet is not None and sheet.shape[1] > 2 * (2 * 32 + 12)  # two panels of two columns
        for prior in ("uniform", "realistic"):
            assert (tmp_path / f"{style}-{prior}-32" / "manifest.json").is_file()


def test_sheet_refuses_a_bad_count_in_one_line(tmp_path, capsys):
    from game.__main__ import main

    with pytest.raises(SystemExit) as stop:
        main(["sheet", "--out", str(tmp_path / "sheet"), "--count", "0"])
    assert stop.value.code != 0
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1 and "--count" in lines[0] and "at least 1" in lines[0]
    assert not (tmp_path / "sheet").exists()


@pytest.mark.parametrize("module", ["bench.render", "studies.engine_v2"])
def test_engine_comparisons_refuse_a_reference_without_an_engine(tmp_path, module):
    done = subprocess.run(
        [sys.executable, "-m", module, "--reference", str(tmp_path)],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert done.returncode != 0
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and str(tmp_path) in lines[0] and "game/engine.py" in lines[0], done.stderr
