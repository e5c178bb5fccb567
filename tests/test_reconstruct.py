"""Photo alignment to the face template and the photo-to-character tool (python -m eval.reconstruct)."""

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
import trimesh
from fakes import write_network_checkpoint
from PIL import Image
from skimage import data

from eval.align import FaceCountError, align_faces, align_photo, is_grayscale, template_points
from eval.reconstruct import COLOUR_SLIDERS, load_predictor, main
from game import parameters as P
from game.framing import TEMPLATE
from game.mesh_export import character_mesh
from game.presets import read_preset
from models.face_mesh import FaceMeshNet, astronaut_landmarks, image_landmarks

# Imported before any render on purpose: loading triton (under vector_quantize_pytorch) after Mesa's EGL
# context exists crashes the process (two LLVMs in one process); the other order is fine.
from models.regressor import Regressor
from models.vqvae2 import VQVAE2

SIZE = 256


@pytest.fixture(scope="module")
def astronaut_face():
    (face,) = align_faces(data.astronaut(), SIZE)
    return face


@pytest.fixture(scope="module")
def astronaut_jpg(tmp_path_factory):
    path = tmp_path_factory.mktemp("photos") / "astronaut.jpg"
    Image.fromarray(data.astronaut()).save(path, quality=95)
    return path


def two_faces() -> np.ndarray:
    face = data.astronaut()[0:300, 100:350]
    return np.ascontiguousarray(np.concatenate([face, face[:, ::-1]], 1))


def test_points_match_the_landmark_nets_own_astronaut_pass(astronaut_face):
    # astronaut_landmarks() starts from a hand-placed box; align_faces starts from BlazeFace: same face, same points.
    assert np.abs(astronaut_face.points - template_points(astronaut_landmarks())).max() < 2  # measured: 0.85 px
    assert astronaut_face.image.shape == (SIZE, SIZE, 3) and astronaut_face.image.dtype == np.uint8


def test_aligned_astronaut_sits_on_the_template(astronaut_face):
    matrix = astronaut_face.matrix
    mapped = astronaut_face.points @ matrix[:, :2].T + matrix[:, 2]
    # Re-detect in the aligned image, on the template's own landmark crop (docs/contracts.md section 2).
    crop = (0.1 * SIZE, 0.16 * SIZE, 0.8 * SIZE)
    again = template_points(image_landmarks(FaceMeshNet(), astronaut_face.image, crop))
    # The warp puts the eyes where the similarity says (measured 0.6 px), so image and points agree.
    assert np.linalg.norm(again[:2] - mapped[:2], axis=1).max() < 1.5
    # A similarity cannot fit all five points of every face: her wide smile pulls the eyes 4.6 px below the
    # template's eye line (x is within 1.2 px); 3 px in x, 6 px in y.
    assert np.abs(again[:2, 0] - TEMPLATE[:2, 0] * SIZE).max() < 3
    assert np.abs(again[:2, 1] - TEMPLATE[:2, 1] * SIZE).max() < 6


def test_no_face_and_several_faces_are_reported():
    flat = np.full((240, 320, 3), 200, np.uint8)
    noise = np.random.default_rng(0).integers(0, 256, (240, 320, 3), dtype=np.uint8)
    for image in (flat, noise):
        assert align_faces(image) == []
        with pytest.raises(FaceCountError, match="no face found in blank.png"):
            align_photo(image, "blank.png")
    with pytest.raises(FaceCountError, match=r"2 faces found in pair.jpg.*--all"):
        align_photo(two_faces(), "pair.jpg")
    assert len(align_photo(two_faces(), "pair.jpg", size=64, several=True)) == 2


def test_cli_neutral_face_writes_preset_render_and_side_by_side(astronaut_jpg, tmp_path):
    out = tmp_path / "out"
    assert main([str(astronaut_jpg), "--ckpt", "none", "--out", str(out)]) == 0
    preset = json.loads((out / "astronaut.json").read_text())
    assert preset["parameter_table_version"] == P.TABLE_VERSION
    assert list(preset["parameters"]) == P.names()
    assert preset["skin_tone_snapped"] is True and preset["source"] == str(astronaut_jpg)
    values = np.array(list(preset["parameters"].values()))
    # The neutral face, but for the skin tone measured on her (light) skin.
    skin = P.index_of("skin_tone")
    assert (np.delete(values, skin) == 0).all() and -2.5 <= values[skin] < 0
    render = np.asarray(Image.open(out / "astronaut_render.png"))
    side = np.asarray(Image.open(out / "astronaut_side_by_side.png"))
    assert render.shape == (SIZE, SIZE, 3) and side.shape == (SIZE, 2 * SIZE, 3)
    assert (side[:, SIZE:] == render).all() and render.std() > 10


@pytest.mark.parametrize("mesh_format", ["glb", "obj"])
def test_cli_mesh_writes_the_presets_head_beside_it(astronaut_jpg, tmp_path, mesh_format):
    out = tmp_path / "out"
    assert main([str(astronaut_jpg), "--ckpt", "none", "--out", str(out), "--size", "64", "--mesh", mesh_format]) == 0
    params = read_preset(out / "astronaut.json")  # the reconstruct tool's preset, read by the game's reader
    preset = json.loads((out / "astronaut.json").read_text())
    np.testing.assert_array_equal(params, np.float32(list(preset["parameters"].values())))
    assert params[P.index_of("skin_tone")] != 0  # snapped from her skin: the mesh is of this preset, not the neutral
    expected = character_mesh(params)
    loaded = trimesh.load(out / f"astronaut.{mesh_format}", process=False)
    mesh = next(iter(loaded.geometry.values())) if isinstance(loaded, trimesh.Scene) else loaded
    assert len(mesh.vertices) == len(expected.vertices)
    np.testing.assert_allclose(mesh.bounds, expected.bounds, atol=1e-6)


def test_cli_refuses_an_unknown_mesh_format_before_anything_runs(astronaut_jpg, tmp_path, capsys):
    with pytest.raises(SystemExit) as stopped:
        main([str(astronaut_jpg), "--ckpt", "none", "--out", str(tmp_path / "out"), "--mesh", "fbx"])
    assert stopped.value.code == 2 and "argument --mesh: invalid choice: 'fbx'" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_cli_reports_bad_files_goes_on_and_fails_at_the_end(astronaut_jpg, tmp_path, capsys):
    broken, blank, pair = tmp_path / "broken.jpg", tmp_path / "blank.png", tmp_path / "pair.jpg"
    broken.write_text("not an image")
    Image.fromarray(np.full((120, 160, 3), 90, np.uint8)).save(blank)
    Image.fromarray(two_faces()).save(pair)
    out = tmp_path / "out"
    photos = [broken, blank, pair, tmp_path / "missing.jpg", astronaut_jpg]
    assert main([*map(str, photos), "--ckpt", "none", "--out", str(out), "--size", "64", "--no-skin-snap"]) == 1
    err = capsys.readouterr().err.splitlines()
    for photo, says in [
        (broken, "cannot read"),
        (blank, "no face found"),
        (pair, "2 faces found"),
        (tmp_path / "missing.jpg", "no such file"),
    ]:
        assert any(str(photo) in line and says in line for line in err), (photo, err)
    assert "4 of 5 photos failed" in err[-1]
    preset = json.loads((out / "astronaut.json").read_text())  # the good photo after the bad ones still ran
    assert preset["skin_tone_snapped"] is False and not any(preset["parameters"].values())


def write_standin_checkpoint(path, image_size=64, table_version=P.TABLE_VERSION):
    """A tiny untrained encoder E and regressor R in the layout load_network reads (docs/contracts.md 6)."""
    specs = {
        "encoder": {
            "class_path": "models.vqvae2.VQVAE2",
            "init_args": dict(
                image_size=image_size,
                channel=16,
                n_res_block=1,
                n_res_channel=8,
                embed_dim=8,
                n_embed=16,
                kmeans_init=False,
            ),
        },
        "regressor": {
            "class_path": "models.regressor.Regressor",
            "init_args": dict(image_size=image_size, in_channels=16),
        },
    }
    torch.manual_seed(0)
    nets = {
        "encoder": VQVAE2(**specs["encoder"]["init_args"]),
        "regressor": Regressor(**specs["regressor"]["init_args"]),
    }
    datamodule = {"parameter_table_version": table_version, "image_size": image_size}
    write_network_checkpoint(path, {"CrossDomainDataModule": datamodule}, **nets)
    return nets


def test_checkpoint_predictor_changes_the_parameters(astronaut_jpg, tmp_path):
    ckpt = tmp_path / "standin.ckpt"
    nets = write_standin_checkpoint(ckpt)
    predict = load_predictor(ckpt)
    images = torch.rand(2, 3, 96, 96, generator=torch.Generator().manual_seed(0))  # resized to E's 64 px
    params = predict(images)
    assert params.shape == (2, P.NUM_PARAMETERS) and params.abs().max() > 0
    small = torch.nn.functional.interpolate(images, size=(64, 64), mode="bilinear", antialias=True)
    with torch.no_grad():
        expected = nets["regressor"](nets["encoder"].eval()(small).features).parameters
    assert torch.allclose(params, expected, atol=1e-5)

    out = tmp_path / "out"
    assert main([str(astronaut_jpg), "--ckpt", str(ckpt), "--out", str(out), "--size", "64", "--no-skin-snap"]) == 0
    preset = json.loads((out / "astronaut.json").read_text())
    values = np.array(list(preset["parameters"].values()))
    assert preset["checkpoint"] == str(ckpt) and np.abs(values).max() > 1e-3 and (np.abs(values) <= 2.5).all()


def test_checkpoint_of_another_parameter_table_is_refused(astronaut_jpg, tmp_path, capsys):
    ckpt = tmp_path / "old.ckpt"
    write_standin_checkpoint(ckpt, table_version="v1-000000000000")
    with pytest.raises(ValueError, match="parameter table v1-000000000000"):
        load_predictor(ckpt)
    with pytest.raises(SystemExit):  # the CLI says so in one line and stops before any photo
        main([str(astronaut_jpg), "--ckpt", str(ckpt), "--out", str(tmp_path / "out")])
    assert "parameter table" in capsys.readouterr().err and not (tmp_path / "out").exists()


# ------------------------------------------------------------------------------------- bad input (issue 12)


def write_truncated_jpeg(path):
    """The astronaut as a JPEG cut off half way: OpenCV decodes it with a grey lower half and a nameless warning."""
    Image.fromarray(data.astronaut()).save(path, quality=95)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    return path


def make_folder(path):
    path.mkdir()
    return path


@pytest.mark.parametrize(
    "make, says",
    [(write_truncated_jpeg, "damaged image (image file is truncated"), (make_folder, "is a folder")],
    ids=["truncated_jpeg", "folder"],
)
def test_cli_refuses_a_damaged_photo_or_a_folder_by_name(make, says, astronaut_jpg, tmp_path, capsys):
    bad, out = make(tmp_path / "bad.jpg"), tmp_path / "out"
    assert main([str(bad), str(astronaut_jpg), "--ckpt", "none", "--out", str(out), "--size", "64"]) == 1
    err = capsys.readouterr().err.splitlines()
    assert any(line.startswith("skipped: ") and str(bad) in line and says in line for line in err), err
    assert not (out / "bad.json").exists() and (out / "astronaut.json").exists()


@pytest.mark.parametrize("quarter_turns", [1, 2, 3])
def test_cli_turns_a_turned_photo_until_the_face_is_upright(quarter_turns, tmp_path, capsys):
    # np.rot90 turns counter-clockwise; the photo on disk is turned clockwise, so the tool turns it back.
    path, out = tmp_path / "turned.png", tmp_path / "out"
    Image.fromarray(np.rot90(data.astronaut(), -quarter_turns)).save(path)
    assert main([str(path), "--ckpt", "none", "--out", str(out), "--size", "64"]) == 0
    (upright,) = align_faces(data.astronaut(), 64)
    aligned = np.asarray(Image.open(out / "turned_side_by_side.png"))[:, :64].astype(int)
    # Upside down (180) used to be regressed as it was: the detector and the landmark net take the mouth for the eyes.
    assert np.abs(aligned - upright.image).mean() < 3  # measured 0 (PNG): the same face, upright
    assert json.loads((out / "turned.json").read_text())["turned_degrees"] == 90 * quarter_turns
    assert f"turned {90 * quarter_turns} degrees" in capsys.readouterr().err


@pytest.mark.parametrize("encoding", ["L", "RGB"])
def test_cli_grayscale_photo_keeps_colour_sliders_neutral_and_says_so(encoding, tmp_path, capsys):
    grey = np.asarray(Image.fromarray(data.astronaut()).convert("L"))
    path, out = tmp_path / "grey.jpg", tmp_path / "out"
    Image.fromarray(grey if encoding == "L" else np.repeat(grey[..., None], 3, 2)).save(path, quality=90)
    assert main([str(path), "--ckpt", "none", "--out", str(out), "--size", "64"]) == 0
    err = capsys.readouterr().err
    assert "warning: " in err and str(path) in err and "grayscale" in err
    preset = json.loads((out / "grey.json").read_text())
    assert all(preset["parameters"][name] == 0 for name in COLOUR_SLIDERS)  # skin_tone used to go to the lightest
    assert preset["grayscale"] is True and preset["skin_tone_snapped"] is False


def test_colour_photo_is_not_taken_for_grayscale():
    assert not is_grayscale(data.astronaut()) and is_grayscale(np.zeros((8, 8, 3), np.uint8))


def out_is_a_file(tmp_path):
    (tmp_path / "taken").write_text("a file")
    return tmp_path / "taken", "is a file, not a folder"


def out_below_a_file(tmp_path):
    (tmp_path / "taken").write_text("a file")
    return tmp_path / "taken" / "out", "is a file"


def out_unwritable(tmp_path):
    if os.geteuid() != 0:  # procfs refuses even root; others meet a plain read-only folder
        (tmp_path / "locked").mkdir(mode=0o500)
        return tmp_path / "locked" / "out", "cannot write into"
    return Path("/proc/likeness-reconstruct-out"), "cannot write into /proc"


@pytest.mark.parametrize("make_out", [out_is_a_file, out_below_a_file, out_unwritable])
def test_cli_checks_out_before_the_model_loads_in_one_line(make_out, astronaut_jpg, tmp_path, run_cli):
    out, says = make_out(tmp_path)
    # A checkpoint that cannot load: were --out checked after the model, this would be the error.
    (tmp_path / "garbage.ckpt").write_bytes(b"not a checkpoint")
    done = run_cli(
        "-m", "eval.reconstruct", astronaut_jpg, "--ckpt", tmp_path / "garbage.ckpt", "--out", out, check=False
    )
    lines = done.stderr.strip().splitlines()
    assert done.returncode != 0 and len(lines) == 1, done.stderr
    assert lines[0].startswith("python -m eval.reconstruct: error: --out ") and str(out) in lines[0]
    assert says in lines[0] and "wrote" not in done.stdout and "->" not in done.stdout


@pytest.mark.parametrize("kind", ["missing", "folder"])
def test_cli_checks_ckpt_and_photos_before_the_model_loads(kind, astronaut_jpg, tmp_path, capsys):
    out = tmp_path / "out"
    if kind == "missing":  # a --ckpt that is not there
        argv, says = [str(astronaut_jpg), "--ckpt", str(tmp_path / "no.ckpt")], "--ckpt"
    else:  # only a folder for a photo, and a checkpoint that would fail to load: the photo is named first
        (tmp_path / "garbage.ckpt").write_bytes(b"not a checkpoint")
        argv, says = [str(make_folder(tmp_path / "photos")), "--ckpt", str(tmp_path / "garbage.ckpt")], "is a folder"
    with pytest.raises(SystemExit) as stopped:
        main([*argv, "--out", str(out)])
    assert stopped.value.code != 0 and says in capsys.readouterr().err and not out.exists()
