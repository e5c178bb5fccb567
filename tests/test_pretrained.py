"""The shipped default model (issue 13 item 4): studies.pretrained's export and model card, and how the photo tool and
verify pick the model (eval.descriptors.load_parameter_model, DEFAULT_MODEL)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from skimage import data

from eval import descriptors
from game import parameters as P
from models.checkpoints import export_network, load_network
from models.readers import FaceFeatureReader
from studies.pretrained.pretrained import MAX_BYTES, TITLE, fit_command, model_card

REPO = Path(__file__).resolve().parents[1]
REAL_MODEL = REPO / "weights" / "default" / "model.pt"
OTHER_TABLE = "v0-000000000000"


def tiny_export(path: Path, table: str = P.TABLE_VERSION, bias: float = 0.5) -> tuple[Path, FaceFeatureReader]:
    """A FaceFeatureReader (colour group, 8 hidden units) with fitted statistics and a head bias of `bias` (so it
    answers away from the neutral face whatever it sees), exported as studies.pretrained exports."""
    torch.manual_seed(0)
    net = FaceFeatureReader(["colour"], hidden=8, dropout=0.0, statistics_batches=1).train()
    with torch.no_grad():
        net(torch.rand(4, 3, 64, 64))  # fits the standardisation
        net.head[-1].bias.fill_(bias)
    path.write_bytes(export_network(net.eval(), {"parameter_table_version": table, "image_size": 64}))
    return path, net


@pytest.fixture(scope="module")
def astronaut_jpg(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("photos") / "astronaut.jpg"
    Image.fromarray(data.astronaut()).save(path, quality=95)
    return path


def test_the_export_round_trips_through_load_network(tmp_path):
    path, net = tiny_export(tmp_path / "model.pt")
    loaded = load_network(path, "net")
    assert type(loaded) is FaceFeatureReader and not loaded.training and path.stat().st_size < MAX_BYTES
    images = torch.rand(3, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        assert torch.allclose(loaded(images).parameters, net(images).parameters, atol=1e-6)
    reader, size = descriptors.load_parameter_model(path)  # the loader both tools use: same network, its size
    assert size == 64 and type(reader) is FaceFeatureReader and reader.cache_rows == 0
    bigger = torch.nn.functional.interpolate(images, size=(128, 128), mode="bilinear", antialias=True)
    described = descriptors.ReaderDescriptor("default", reader, size)(bigger)  # resized back to 64 px
    assert described.shape == (3, P.NUM_PARAMETERS) and described.abs().max() > 0.05


def test_an_export_of_another_parameter_table_is_refused_naming_the_file(tmp_path, astronaut_jpg, capsys):
    from eval.reconstruct import main

    path, _ = tiny_export(tmp_path / "old.pt", table=OTHER_TABLE)
    with pytest.raises(ValueError, match=rf"{path}.*parameter table {OTHER_TABLE}"):
        descriptors.load_parameter_model(path)
    with pytest.raises(SystemExit):
        main([str(astronaut_jpg), "--ckpt", str(path), "--out", str(tmp_path / "out")])
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and str(path) in lines[0] and OTHER_TABLE in lines[0]
    assert not (tmp_path / "out").exists()


def test_an_imitator_checkpoint_is_not_taken_for_a_reader(tmp_path):
    from fakes import write_imitator_checkpoint

    path = write_imitator_checkpoint(tmp_path / "imitator.ckpt")
    with pytest.raises(ValueError, match=r"imitator.ckpt: holds a models.imitator.Imitator under 'net', not a param"):
        descriptors.load_parameter_model(path)


def test_reconstruct_without_ckpt_uses_the_default_model(tmp_path, astronaut_jpg, monkeypatch):
    from eval.reconstruct import main

    path, _ = tiny_export(tmp_path / "model.pt")
    monkeypatch.setattr(descriptors, "DEFAULT_MODEL", path)
    out = tmp_path / "out"
    assert main([str(astronaut_jpg), "--out", str(out), "--size", "64", "--no-skin-snap"]) == 0
    preset = json.loads((out / "astronaut.json").read_text())
    values = np.array(list(preset["parameters"].values()))
    assert preset["checkpoint"] == str(path)
    assert np.abs(values).max() > 0.05 and (np.abs(values) <= 2.5).all()  # not the neutral face
    neutral = tmp_path / "neutral"
    assert main([str(astronaut_jpg), "--ckpt", "none", "--out", str(neutral), "--size", "64"]) == 0
    preset = json.loads((neutral / "astronaut.json").read_text())
    assert preset["checkpoint"] is None
    assert all(v == 0 for name, v in preset["parameters"].items() if name != "skin_tone")  # snapped from the photo


def test_verify_without_ckpt_evaluates_the_default_model_as_row_default(tmp_path, monkeypatch):
    from eval import verify

    path, _ = tiny_export(tmp_path / "model.pt")
    monkeypatch.setattr(descriptors, "DEFAULT_MODEL", path)
    args = verify.parse_args(["--bench", "lfw", "--root-lfw", str(tmp_path), "--face-id", "none"])
    verify.check_arguments(args, tmp_path / "out")
    assert args.ckpt == [f"default={path}"]
    (row,), _ = descriptors.build_descriptors(args.ckpt, None, None, "cpu")
    assert row.name == "default" and row.is_parameters and row(torch.rand(2, 3, 256, 256)).shape == (2, 267)
    none = verify.parse_args(["--bench", "lfw", "--root-lfw", str(tmp_path), "--ckpt", "none"])
    verify.check_arguments(none, tmp_path / "out")
    assert none.ckpt == []  # no model row: baselines and the face-ID row only


def test_a_missing_default_model_is_one_line_saying_make_pretrained(tmp_path, astronaut_jpg, monkeypatch, capsys):
    from eval import reconstruct, verify

    monkeypatch.setattr(descriptors, "DEFAULT_MODEL", tmp_path / "weights" / "default" / "model.pt")
    runs = [
        lambda: reconstruct.main([str(astronaut_jpg), "--out", str(tmp_path / "out")]),
        lambda: verify.main(["--bench", "lfw", "--root-lfw", str(tmp_path), "--out", str(tmp_path / "out")]),
    ]
    for run in runs:
        with pytest.raises(SystemExit) as exit_:
            run()
        lines = capsys.readouterr().err.strip().splitlines()
        assert exit_.value.code == 2 and len(lines) == 1, lines
        assert "make pretrained" in lines[0] and "weights/default/model.pt" in lines[0]
    assert not (tmp_path / "out").exists()


def test_the_model_card_lists_the_command_commit_seeds_and_time(tmp_path):
    model, _ = tiny_export(tmp_path / "model.pt")
    meta = {
        "parameter_table_version": P.TABLE_VERSION,
        "image_size": 64,
        "network": "models.readers.FaceFeatureReader",
        "features": ["mesh", "identity", "colour"],
        "commit": "0123456789abcdef0123456789abcdef01234567",
        "command": "python -m studies.pretrained --budget-minutes 20 --score",
        "fit_command": "python -m lightning_modules.cli fit --config experiments/features/base.yaml",
        "run": "runs/pretrained-default/version_0",
        "created": "2026-01-01T00:00:00",
        "data": {
            "set": "data/game-photo-64-20k-seed3",
            "style": "photo",
            "prior": "uniform",
            "rows": 20000,
            "size": 64,
            "render_seed": 3,
            "renders_per_identity": 1,
            "train_rows": 19000,
            "val_rows": 1000,
            "split_seed": 0,
            "val_fraction": 0.05,
            "seed_everything": 0,
            "batch_size": 64,
        },
        "training": {
            "budget_minutes": 20,
            "wall_seconds": 1500.0,
            "global_step": 2960,
            "epoch": 9,
            "torch": "2.14.1",
            "device": "cpu",
        },
        "held_out": {"step": 2960, "val_rmse_ratio": 0.9876},
    }
    card = model_card(meta, model, None)
    for needed in (
        TITLE,
        "`python -m studies.pretrained --budget-minutes 20 --score`",
        "Commit: `0123456789abcdef0123456789abcdef01234567`",
        "render seed 3",
        "split seed 0",
        "seed_everything 0",
        "19000 training rows, 1000 held out",
        "2960 steps",
        "25.0 min wall clock",
        "budget 20 min",
        P.TABLE_VERSION,
        "val/rmse_ratio 0.9876",
        "Not scored",
    ):
        assert needed in card, needed
    command = fit_command(tmp_path, 20, None, ["trainer.devices=2"])
    assert command[command.index("--trainer.max_time") + 1] == "00:00:20:00" and "--trainer.max_steps" not in command
    assert command[-2:] == ["--trainer.devices", "2"]  # overrides come last, so they win


@pytest.fixture(scope="module")
def photo_set(tmp_path_factory) -> Path:
    """12 photo-style renders at 128 px, one per identity, as experiments/features/shipped.yaml makes them."""
    from game.dataset import generate

    root = tmp_path_factory.mktemp("pretrained") / "photo"
    return generate(root, 12, size=128, style="photo", seed=3, renders_per_identity=1, workers=1, progress=False)


def test_two_steps_export_the_network_and_write_its_card(photo_set, tmp_path, run_cli, astronaut_jpg):
    root = shutil.copytree(photo_set, tmp_path / "photo")
    settings = {
        "data.init_args.target_root": root,
        "data.init_args.generate": "null",
        "data.init_args.batch_size": 4,
        "data.init_args.num_workers": 0,
        "data.init_args.persistent_workers": "false",
        "data.init_args.val_fraction": 0.25,
        "trainer.limit_val_batches": 1,
        "model.init_args.net.init_args.hidden": 16,
    }
    out, runs = tmp_path / "weights", tmp_path / "runs"
    args = ["--steps", "2", "--no-score", "--runs", runs, "--out", out]
    args += [arg for key, value in settings.items() for arg in ("--set", f"{key}={value}")]
    run_cli("-m", "studies.pretrained", *args, timeout=600)
    model = out / "model.pt"
    net = load_network(model, "net")
    assert type(net) is FaceFeatureReader and int(net.statistics_rows) == 8  # two training batches of 4
    assert model.stat().st_size < MAX_BYTES
    meta = json.loads((out / "model.json").read_text())
    assert meta["parameter_table_version"] == P.TABLE_VERSION
    assert meta["image_size"] == 128  # the size it was trained at: shipped.yaml's
    assert meta["training"]["global_step"] == 2 and meta["data"]["train_rows"] == 9 and meta["data"]["val_rows"] == 3
    assert meta["data"]["render_seed"] == 3 and len(meta["commit"]) >= 40
    card = (out / "MODEL_CARD.md").read_text()
    assert TITLE in card and "python -m studies.pretrained --steps 2 --no-score" in card
    assert meta["commit"] in card and "render seed 3" in card and "Not scored" in card


@pytest.mark.skipif(not REAL_MODEL.is_file(), reason=f"{REAL_MODEL} is not committed yet: run `make pretrained`")
def test_the_shipped_default_model_loads_and_reads_the_astronaut(tmp_path):
    from eval.align import align_faces

    reader, size = descriptors.load_parameter_model(REAL_MODEL)  # refuses another table's file
    saved = torch.load(REAL_MODEL, weights_only=True, map_location="cpu")
    assert saved["export"]["parameter_table_version"] == P.TABLE_VERSION and size == saved["export"]["image_size"]
    assert REAL_MODEL.stat().st_size <= MAX_BYTES and (REAL_MODEL.parent / "MODEL_CARD.md").is_file()
    (face,) = align_faces(data.astronaut(), 256)
    image = torch.from_numpy(face.image).permute(2, 0, 1)[None].float() / 255
    params = descriptors.ReaderDescriptor("default", reader, size)(image)
    assert params.shape == (1, P.NUM_PARAMETERS) and params.abs().max() > 0.05  # not the neutral face


@pytest.mark.parametrize(
    "args, says",
    [
        (["--budget-minutes", "0"], "--budget-minutes must be above 0"),
        (["--steps", "0"], "--steps must be at least 1"),
        (["--set", "trainer.max_steps"], "--set takes KEY=VALUE"),
    ],
)
def test_pretrained_refuses_bad_arguments_before_training(args, says, capsys):
    from studies.pretrained.__main__ import main

    with pytest.raises(SystemExit) as exit_:
        main(args)
    assert exit_.value.code == 2 and says in capsys.readouterr().err


def test_an_export_over_the_size_limit_is_refused_naming_the_file(tmp_path, monkeypatch):
    from studies.pretrained import pretrained

    checkpoint, _ = tiny_export(tmp_path / "run.pt")  # load_network reads an export like a checkpoint
    monkeypatch.setattr(pretrained, "MAX_BYTES", 1000)
    with pytest.raises(ValueError, match=r"out/model.pt: the export is .* MB, over the 0 MB limit for weights/"):
        pretrained.export(checkpoint, tmp_path / "out", {"parameter_table_version": P.TABLE_VERSION})
    assert not (tmp_path / "out" / "model.pt").exists()
