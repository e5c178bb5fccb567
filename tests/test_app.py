"""The character creator app without a browser: eval.character (several photos combined), eval.creator (photos ->
character, bad uploads), eval.app_page (the page's texts and layout) and the `python -m eval.app` command line."""

import json

import numpy as np
import pytest
from PIL import Image
from skimage import data

from eval import creator as creator_module
from eval.app_page import build_page, confidence_text, gallery_items, groups, status_text
from eval.character import COLOUR_SLIDERS, PRIOR_SPREAD, combine, confidence
from eval.creator import Character, Creator
from eval.descriptors import default_model
from game import parameters as P

SKIN = P.index_of("skin_tone")
COLOUR = [P.index_of(name) for name in COLOUR_SLIDERS]


@pytest.fixture(scope="module")
def creator():
    made = Creator(str(default_model()))
    yield made
    made.close()


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    """The astronaut (PNG), her grayscale copy, and the bad uploads the app must name, by kind."""
    folder = tmp_path_factory.mktemp("uploads")
    astronaut = data.astronaut()
    Image.fromarray(astronaut).save(folder / "astronaut.png")
    Image.fromarray(astronaut).convert("L").save(folder / "astronaut_grey.png")
    Image.fromarray(np.full((300, 300, 3), 128, np.uint8)).save(folder / "wall.png")
    face = astronaut[0:300, 100:350]
    Image.fromarray(np.ascontiguousarray(np.concatenate([face, face[:, ::-1]], 1))).save(folder / "twins.png")
    Image.fromarray(astronaut).save(folder / "whole.jpg", quality=90)
    (folder / "cut.jpg").write_bytes((folder / "whole.jpg").read_bytes()[:5000])
    (folder / "notes.png").write_text("not a picture\n")
    Image.new("L", (8000, 7000)).save(folder / "poster.png")  # 56 megapixels, a small file
    with open(folder / "heavy.jpg", "wb") as heavy:  # sparse: over the byte limit without writing it
        heavy.truncate(creator_module.MAX_PHOTO_BYTES + 1)
    return folder


def upload(folder, *names):
    return [(folder / name, name) for name in names]


@pytest.fixture(scope="module")
def astronaut(creator, photos):
    (reading,) = creator.read_photos(upload(photos, "astronaut.png"))
    assert reading.usable, reading.problem
    return reading


def test_one_photo_gives_the_reconstruct_tools_parameters_and_preset(creator, photos, astronaut, tmp_path):
    from eval.reconstruct import main

    assert main([str(photos / "astronaut.png"), "--out", str(tmp_path)]) == 0
    written = json.loads((tmp_path / "astronaut.json").read_text())
    character = Character([astronaut])
    in_app = json.loads(creator.write_preset(character).read_text())
    assert in_app["parameters"] == written["parameters"]  # the same floats, key for key
    assert in_app.pop("source") == "astronaut.png" and written.pop("source") == str(photos / "astronaut.png")
    assert in_app == written  # table version, snap, checkpoint, grayscale, turn: the same keys and values
    values = np.array(list(written["parameters"].values()), np.float32)
    assert np.array_equal(character.parameters, values)


@pytest.mark.parametrize(
    "name, says",
    [
        ("wall.png", "no face found in wall.png"),
        ("twins.png", "2 faces found in twins.png"),
        ("cut.jpg", "cannot read cut.jpg: damaged image"),
        ("notes.png", "cannot read notes.png as an image"),
        ("poster.png", "poster.png is 8000 x 7000 pixels (56 megapixels), over the 50 megapixels"),
        ("heavy.jpg", "heavy.jpg is 50 MB, over the 50 MB this app reads"),
    ],
)
def test_a_bad_upload_is_one_line_naming_the_file_and_the_next_photo_is_read(creator, photos, name, says):
    bad, good = creator.read_photos(upload(photos, name, "astronaut.png"))
    assert not bad.usable and bad.problem.startswith(says) and "\n" not in bad.problem
    assert str(photos) not in bad.problem  # the name as uploaded, not the server's temporary path
    assert good.usable and good.face.score > 0.8
    if name in ("wall.png", "twins.png"):  # decoded: the page shows the photo, with the faces found numbered
        assert bad.preview is not None and bad.preview.shape[2] == 3
    text = status_text([bad, good], kept=False)
    assert says in text and "median" not in text and "reading of this photo" in text


def test_the_views_are_the_engines_front_and_three_quarter_and_the_mesh_is_the_characters(creator, astronaut):
    import trimesh

    from eval.creator import THREE_QUARTER_YAW
    from game import Game

    character = Character([astronaut])
    character.edit("nose_length", 2.0)
    front, turned = creator.views(character.parameters)
    game = Game(creator.size)  # this thread's own engine: the views must be the engine's pictures
    assert np.array_equal(front, game.render(character.parameters))
    assert np.array_equal(turned, game.render(character.parameters, yaw_degrees=THREE_QUARTER_YAW))
    assert np.abs(front.astype(int) - turned).mean() > 5
    path = creator.write_mesh(character)
    assert path.name == "astronaut.glb"
    mesh = trimesh.load(path, force="mesh", process=False)
    vertices = game.vertices(character.parameters)
    assert len(mesh.vertices) == len(vertices)
    np.testing.assert_allclose(mesh.bounds, [vertices.min(0), vertices.max(0)], atol=1e-5)


def test_several_photos_give_the_median_and_a_grayscale_photo_leaves_the_colours_to_the_others(creator, photos):
    readings = creator.read_photos(upload(photos, "astronaut.png", "astronaut_grey.png", "whole.jpg"))
    assert [r.colour for r in readings] == [True, False, True]
    character = Character(readings)
    rows = np.stack([r.reading for r in readings])
    shape = np.setdiff1d(np.arange(P.NUM_PARAMETERS), COLOUR)
    np.testing.assert_allclose(character.regressed[shape], np.median(rows[:, shape], 0), atol=1e-6)
    colour = [SKIN, *COLOUR[1:]]
    colour_rows = rows[[0, 2]][:, colour]
    colour_rows[:, 0] = [readings[0].skin_tone, readings[2].skin_tone]  # snapped
    np.testing.assert_allclose(character.regressed[colour], np.median(colour_rows, 0), atol=1e-6)
    assert character.spread is not None and np.isfinite(character.confidence).all()
    preset = character.preset(creator.checkpoint)
    assert preset["source"] == "median of 3 photos" and preset["grayscale"] is False
    assert [p["grayscale"] for p in preset["photos"]] == [False, True, False]


@pytest.mark.parametrize(
    "rows, colour, median, spread",
    [
        ([[1.0], [2.0], [4.0]], [True, True, True], 2.0, np.std([1, 2, 4], ddof=1)),
        ([[1.0], [-1.0]], [True, True], 0.0, np.sqrt(2)),
        ([[0.5]], [True], 0.5, None),
    ],
)
def test_combine_takes_the_median_and_the_spread_per_slider(rows, colour, median, spread):
    full = np.zeros((len(rows), P.NUM_PARAMETERS))
    full[:, 0] = np.asarray(rows)[:, 0]
    full[:, SKIN] = np.asarray(rows)[:, 0]
    combined, spreads = combine(full, np.array(colour))
    assert combined[0] == pytest.approx(median) and combined[SKIN] == pytest.approx(median)
    if spread is None:
        assert spreads is None
    else:
        assert spreads[0] == pytest.approx(spread) and spreads[1] == 0


def test_colour_sliders_combine_over_colour_photos_only():
    rows = np.zeros((3, P.NUM_PARAMETERS))
    rows[:, COLOUR] = [[2.0], [0.0], [1.0]]  # the middle photo is grayscale: its colours are neutral, not read
    combined, spread = combine(rows, np.array([True, False, True]))
    assert combined[COLOUR] == pytest.approx(1.5) and spread[COLOUR] == pytest.approx(np.sqrt(0.5))
    combined, spread = combine(rows, np.array([True, False, False]))  # one colour photo: its values, spread unknown
    assert combined[COLOUR] == pytest.approx(2.0) and np.isnan(spread[COLOUR]).all()
    combined, _ = combine(rows, np.array([False, False, False]))
    assert (combined[COLOUR] == 0).all()


def test_confidence_is_one_where_photos_agree_and_zero_where_they_disagree_like_random_characters():
    rng = np.random.default_rng(0)
    random_characters = P.sample_uniform(rng, 4000)
    spread = random_characters.std(0, ddof=1)
    assert confidence(np.zeros(3)) == pytest.approx(1.0)
    assert np.abs(confidence(spread)).mean() < 0.03  # PRIOR_SPREAD is the uniform prior's own spread
    assert confidence(np.array([PRIOR_SPREAD / 2, 10.0])) == pytest.approx([0.5, 0.0])


def test_hand_edits_win_until_reset_and_snap_changes_only_the_skin(astronaut):
    character = Character([astronaut])
    snapped = character.parameters
    character.snap_skin = False
    unsnapped = character.parameters
    assert np.flatnonzero(snapped != unsnapped).tolist() == [SKIN]
    assert unsnapped[SKIN] == pytest.approx(astronaut.reading[SKIN], abs=1e-6)
    character.edit("nose_length", 2.0)
    assert character.parameters[P.index_of("nose_length")] == 2.0 and character.preset(None)["edited"] == [
        "nose_length"
    ]
    with pytest.raises(ValueError, match=r"slider head_width: .*head_width.* is outside \[-2.5, 2.5\]"):
        character.edit("head_width", 3.0)
    character.edits.clear()
    assert np.array_equal(character.parameters, unsnapped)


def test_the_page_has_every_slider_grouped_as_in_the_parameter_table(creator, astronaut):
    import gradio as gr

    page = build_page(creator)
    sliders = [block for block in page.blocks.values() if isinstance(block, gr.Slider)]
    # The table's groups are not contiguous (the appearance and late eye rows): grouped by name, in table order.
    in_groups = [p.name for members in groups().values() for p in members]
    assert sorted(in_groups) == sorted(P.names()) and len(set(in_groups)) == P.NUM_PARAMETERS
    assert [p.name for p in groups()["eyes"]] == [p.name for p in P.table() if p.group == "eyes"]
    assert [s.label for s in sliders] == in_groups
    assert [s.elem_id for s in sliders] == [f"slider-{name}" for name in in_groups]
    accordions = [block.label for block in page.blocks.values() if isinstance(block, gr.Accordion)]
    assert accordions == [f"{name} ({len(members)} sliders)" for name, members in groups().items()]
    assert list(groups()) == list(dict.fromkeys(p.group for p in P.table()))
    assert [caption for _, caption in gallery_items([astronaut])] == [
        "astronaut.png: the face found",
        "astronaut.png: aligned to the template (what the model reads)",
    ]


def test_confidence_text_lists_the_least_sure_sliders_first(astronaut):
    one, other = (creator_module.PhotoReading(name, face=astronaut.face, reading=astronaut.reading.copy())
                  for name in ("one.png", "other.png"))  # fmt: skip
    one.reading[P.index_of("jaw_spacing")], other.reading[P.index_of("jaw_spacing")] = -1.0, 1.0
    text = confidence_text(Character([one, other]))  # the photos disagree most about the jaw
    first_row = text.split("|---|---|---|---|\n")[1].splitlines()[0]
    assert first_row == f"| jaw_spacing | jaw | ±1.41 | {1 - np.sqrt(2) / PRIOR_SPREAD:.2f} |"
    assert "upload two or more" in confidence_text(Character([astronaut])).lower()


# ----------------------------------------------------------------------------------------------- command line


def test_a_port_in_use_is_one_line_before_anything_loads(run_cli, free_port):
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", free_port))
        taken.listen()
        done = run_cli("-m", "eval.app", "--port", free_port, check=False)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.strip() == (
        f"python -m eval.app: error: --port 127.0.0.1:{free_port} is in use (Address already in use): stop what runs "
        "there or pick another port"
    )


@pytest.mark.parametrize("port", ["0", "70000"])
def test_a_port_out_of_range_is_one_line(run_cli, port):
    done = run_cli("-m", "eval.app", "--port", port, check=False)
    assert done.returncode == 2 and done.stderr.strip() == (
        f"python -m eval.app: error: --port {port} is not a TCP port (1 to 65535)"
    )


@pytest.mark.parametrize("kind", ["missing", "folder", "garbage"])
def test_a_bad_ckpt_is_one_line_naming_it(run_cli, free_port, tmp_path, kind):
    ckpt = tmp_path / "model.pt"
    if kind == "folder":
        ckpt.mkdir()
    elif kind == "garbage":
        ckpt.write_bytes(b"not a checkpoint" * 10)
    done = run_cli("-m", "eval.app", "--port", free_port, "--ckpt", ckpt, check=False)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1 and "Traceback" not in done.stderr
    assert lines[0].startswith(f"python -m eval.app: error: --ckpt {ckpt}")
    assert {"missing": "not found", "folder": "is a folder", "garbage": "not a readable checkpoint"}[kind] in lines[0]


def test_no_default_model_is_one_line_saying_make_pretrained(monkeypatch, free_port, tmp_path, capsys):
    from eval import app, descriptors

    monkeypatch.setattr(descriptors, "DEFAULT_MODEL", tmp_path / "weights" / "model.pt")
    with pytest.raises(SystemExit) as stop:
        app.main(["--port", str(free_port)])
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert stop.value.code == 2 and line.startswith(f"python -m eval.app: error: no default model: {tmp_path}")
    assert "make pretrained" in line


def test_a_model_of_another_parameter_table_is_one_line_naming_it(free_port, tmp_path, capsys):
    import torch

    from eval import app

    saved = torch.load(default_model(), weights_only=True, map_location="cpu")
    saved["export"]["parameter_table_version"] = "v0-000000000000"
    old = tmp_path / "old.pt"
    torch.save(saved, old)
    with pytest.raises(SystemExit) as stop:
        app.main(["--port", str(free_port), "--ckpt", str(old)])
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert stop.value.code == 2 and line.startswith(f"python -m eval.app: error: --ckpt {old}: {old} uses parameter")
    assert "v0-000000000000" in line and "the 267 parameters mean different things" in line
