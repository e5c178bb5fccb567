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
from models.readers import FaceFeatureReader, MeanOfReaders, TimmReader
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


def member_meta(name: str, network: str, size: int, steps: int) -> dict:
    """One member's metadata as studies.pretrained.member_metadata records it."""
    return {
        "name": name,
        "network": network,
        "features": ["identity"] if network.endswith("FaceFeatureReader") else None,
        "backbone": "resnet10t" if network.endswith("TimmReader") else None,
        "image_size": size,
        "checkpoint": f"runs/pretrained-{name}/version_0/checkpoints/last.ckpt",
        "fit_command": f"python -m lightning_modules.cli fit --config experiments/features/base.yaml --run.name {name}",
        "run": f"runs/pretrained-{name}/version_0",
        "data": {
            "set": f"data/game-photo-{size}-20k-seed3",
            "style": "photo",
            "prior": "uniform",
            "rows": 20000,
            "size": size,
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
            "budget_minutes": 60,
            "wall_seconds": 1500.0,
            "global_step": steps,
            "epoch": 9,
            "torch": "2.14.1",
            "device": "cpu",
        },
        "held_out": {"step": steps, "val_rmse_ratio": 0.9876},
    }


def test_the_model_card_lists_the_command_commit_and_each_members_seeds_and_time(tmp_path):
    model, _ = tiny_export(tmp_path / "model.pt")
    meta = {
        "parameter_table_version": P.TABLE_VERSION,
        "image_size": None,
        "network": "models.readers.MeanOfReaders",
        "stored_dtype": "float16",
        "commit": "0123456789abcdef0123456789abcdef01234567",
        "command": "python -m studies.pretrained --budget-minutes 60 --score",
        "created": "2026-01-01T00:00:00",
        "members": [
            member_meta("face-features", "models.readers.FaceFeatureReader", 128, 2960),
            member_meta("pixels", "models.readers.TimmReader", 64, 2968),
        ],
    }
    card = model_card(meta, model, None)
    for needed in (
        TITLE,
        "the mean of 2 readers' parameters (`face-features`, `pixels`",
        "`python -m studies.pretrained --budget-minutes 60 --score`",
        "Commit: `0123456789abcdef0123456789abcdef01234567`",
        "weights stored as float16",
        "each member resizes it to its own training size",
        "### Member `face-features`",
        "dlib's face descriptor",
        "resized to 128 px (its training size)",
        "### Member `pixels`",
        "timm's resnet10t trained from scratch",
        "resized to 64 px (its training size)",
        "render seed 3",
        "split seed 0",
        "seed_everything 0",
        "19000 training rows, 1000 held out",
        "2960 steps",
        "2968 steps",
        "25.0 min wall clock",
        "budget 60 min",
        P.TABLE_VERSION,
        "val/rmse_ratio 0.9876",
        "Not scored",
    ):
        assert needed in card, needed


def test_fit_commands_take_every_setting_and_their_own_members_last():
    settings = ["trainer.devices=2", "face-features:model.init_args.net.init_args.hidden=16", "pixels:data.x=1"]
    face = fit_command("face-features", Path("runs"), 20, None, settings)
    assert face[face.index("--trainer.max_time") + 1] == "00:00:20:00" and "--trainer.max_steps" not in face
    assert face[face.index("--run.name") + 1] == "pretrained-face-features"
    assert face[-4:] == ["--trainer.devices", "2", "--model.init_args.net.init_args.hidden", "16"]  # last: they win
    pixels = fit_command("pixels", Path("runs"), 90, 5, settings)
    assert pixels[pixels.index("--trainer.max_time") + 1] == "00:01:30:00"
    assert pixels[-6:] == ["--trainer.max_steps", "5", "--trainer.devices", "2", "--data.x", "1"]
    assert "experiments/features/resnet10t.yaml" in pixels and "experiments/features/identity.yaml" in face


def test_a_mean_export_over_the_limit_in_float32_is_stored_in_float16_and_loads(tmp_path, monkeypatch):
    from studies.pretrained import pretrained

    _, first = tiny_export(tmp_path / "first.pt", bias=0.5)
    _, second = tiny_export(tmp_path / "second.pt", bias=-0.2)
    mean = MeanOfReaders([first, second], [64, 128]).eval()
    float32 = len(export_network(mean, {}))
    monkeypatch.setattr(pretrained, "MAX_BYTES", float32 - 1)
    path, meta = pretrained.export(mean, tmp_path / "out", {"parameter_table_version": P.TABLE_VERSION})
    saved = torch.load(path, weights_only=True)["state_dict"]
    assert meta["stored_dtype"] == "float16" == json.loads((tmp_path / "out/model.json").read_text())["stored_dtype"]
    assert saved["net.readers.0.head.0.weight"].dtype == torch.float16 and path.stat().st_size < float32
    assert saved["net.readers.1.feature_sum"].dtype == torch.float64  # running sums would overflow float16
    reader, size = descriptors.load_parameter_model(path)
    assert type(reader) is MeanOfReaders and size is None and reader.image_sizes == [64, 128]
    assert all(member.cache_rows == 0 for member in reader.readers)  # eval reads each picture once
    assert torch.equal(reader.readers[1].feature_sum, second.feature_sum)
    images = torch.rand(2, 3, 96, 96, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        expected = mean(images).parameters
        torch.testing.assert_close(reader(images).parameters, expected, atol=5e-3, rtol=0)
    assert expected.abs().max() > 0.05


@pytest.fixture(scope="module")
def photo_set(tmp_path_factory) -> Path:
    """12 photo-style renders at 128 px, one per identity, as experiments/features/shipped.yaml makes them."""
    from game.dataset import generate

    root = tmp_path_factory.mktemp("pretrained") / "photo"
    return generate(root, 12, size=128, style="photo", seed=3, renders_per_identity=1, workers=1, progress=False)


def test_two_steps_of_each_member_export_their_mean_and_write_its_card(photo_set, tmp_path, run_cli):
    root = shutil.copytree(photo_set, tmp_path / "photo")
    settings = {
        "data.init_args.target_root": root,
        "data.init_args.generate": "null",
        "data.init_args.batch_size": 4,
        "data.init_args.num_workers": 0,
        "data.init_args.persistent_workers": "false",
        "data.init_args.val_fraction": 0.25,
        "trainer.limit_val_batches": 1,
        "face-features:model.init_args.net.init_args.hidden": 16,
        "pixels:data.init_args.image_size": 64,
    }
    out, runs = tmp_path / "weights", tmp_path / "runs"
    args = ["--steps", "2", "--no-score", "--runs", runs, "--out", out]
    args += [arg for key, value in settings.items() for arg in ("--set", f"{key}={value}")]
    run_cli("-m", "studies.pretrained", *args, timeout=600)
    model = out / "model.pt"
    net = load_network(model, "net")
    assert type(net) is MeanOfReaders and [type(member) for member in net.readers] == [FaceFeatureReader, TimmReader]
    assert int(net.readers[0].statistics_rows) == 8 and net.image_sizes == [128, 64]  # two training batches of 4
    assert model.stat().st_size < MAX_BYTES
    meta = json.loads((out / "model.json").read_text())
    assert meta["parameter_table_version"] == P.TABLE_VERSION and meta["image_size"] is None
    assert meta["stored_dtype"] == "float32"  # ResNet-10-T and a 16-wide head fit 20 MB (the shipped one's 512 do not)
    assert [member["name"] for member in meta["members"]] == ["face-features", "pixels"]
    for member in meta["members"]:
        assert member["training"]["global_step"] == 2 and member["data"]["render_seed"] == 3
        assert member["data"]["train_rows"] == 9 and member["data"]["val_rows"] == 3
    assert len(meta["commit"]) >= 40
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
        (["--set", "trainer.max_steps"], "--set takes [MEMBER:]KEY=VALUE"),
        (["--members", "pixels", "pixels"], "--members names one twice"),
        (["--members", "mesh"], "invalid choice: 'mesh'"),
    ],
)
def test_pretrained_refuses_bad_arguments_before_training(args, says, capsys):
    from studies.pretrained.__main__ import main

    with pytest.raises(SystemExit) as exit_:
        main(args)
    assert exit_.value.code == 2 and says in capsys.readouterr().err


def test_a_float16_export_refuses_a_weight_that_float16_cannot_hold():
    net = FaceFeatureReader(["colour"], hidden=8)
    with torch.no_grad():
        net.head[0].weight[0, 0] = 1e6
    with pytest.raises(ValueError, match=r"head.0.weight: values up to 1e\+06 do not fit float16"):
        export_network(net, {}, half=True)
    assert len(export_network(net, {})) > 0  # float32 holds it


def test_an_export_over_the_size_limit_even_in_float16_is_refused_naming_the_file(tmp_path, monkeypatch):
    from studies.pretrained import pretrained

    _, net = tiny_export(tmp_path / "run.pt")
    monkeypatch.setattr(pretrained, "MAX_BYTES", 1000)
    with pytest.raises(ValueError, match=r"out/model.pt: the export is .* MB even in float16, over the 0 MB limit"):
        pretrained.export(net, tmp_path / "out", {"parameter_table_version": P.TABLE_VERSION})
    assert not (tmp_path / "out" / "model.pt").exists()
