"""Photo alignment to the face template and the photo-to-character tool (python -m eval.reconstruct)."""

import json

import numpy as np
import pytest
import torch
from fakes import write_network_checkpoint
from PIL import Image
from skimage import data

from eval.align import FaceCountError, align_faces, align_photo, template_points
from eval.reconstruct import load_predictor, main
from game import parameters as P
from game.framing import TEMPLATE
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
