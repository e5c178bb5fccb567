"""studies.learning_curve: the schedule it stretches, the snapshots it names, the 128 px overlays, bad arguments, and
(slow) a toy curve end to end: imitator, a fit with a snapshot per validation, the benchmark, JSON and the plot."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from lightning.pytorch import LightningDataModule, LightningModule
from study_checks import assert_refused_before_training

from studies.learning_curve.curve import snapshot_callback, snapshot_step, step_size

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("epochs, expected", [(6, 4), (30, 20), (1, 1), (2, 1)])
def test_the_learning_rate_step_keeps_the_demos_proportion(epochs, expected):
    assert step_size(epochs) == expected


@pytest.mark.parametrize("name, step", [("step0000150.ckpt", 150), ("step0000300-v1.ckpt", 300)])
def test_a_snapshots_step_comes_from_its_name(name, step):
    assert snapshot_step(Path(name)) == step


def test_a_file_that_is_not_a_snapshot_is_refused_naming_it():
    with pytest.raises(ValueError, match="last.ckpt: not a learning-curve snapshot"):
        snapshot_step(Path("runs/x/last.ckpt"))


def test_the_snapshot_callback_keeps_every_validation():
    spec = json.loads(snapshot_callback(Path("/tmp/s")))
    assert spec["class_path"] == "lightning.pytorch.callbacks.ModelCheckpoint"
    assert spec["init_args"]["save_top_k"] == -1 and spec["init_args"]["monitor"] is None
    assert spec["init_args"]["save_on_train_epoch_end"] is False  # after validation: shrinkage refitted


def test_the_128_px_overlays_set_every_size(tmp_path, monkeypatch):
    from lightning_modules.cli import LikenessCLI

    configs = ["--config", "experiments/demo/imitator.yaml", "--config", "experiments/demo/imitator_128.yaml"]
    monkeypatch.chdir(REPO)
    cli = LikenessCLI(
        LightningModule, LightningDataModule, subclass_mode_model=True, subclass_mode_data=True, run=False,
        args=[*configs, "--run.wandb", "false", "--data.init_args.target_root", str(tmp_path / "game")],
    )  # fmt: skip
    assert cli.model.net.image_size == 128 and cli.datamodule.hparams.image_size == 128
    assert cli.datamodule.hparams.generate["size"] == 128 and cli.config.run.name == "demo-imitator-128"
    overlay = (REPO / "experiments/demo/size128.yaml").read_text()
    for needed in (
        "image_size: 128   # features 32x32x128",
        "size: 128, seed: 0}",
        "size: 128, seed: 1,",
        "demo-imitator-128",
    ):
        assert needed in overlay


@pytest.mark.parametrize(
    "arguments, message",
    [
        (["--epochs", "0"], "--epochs must be at least 1"),
        (["--set", "trainer.max_steps"], "--set takes KEY=VALUE"),
        (["--imitator-set", "x"], "--set takes KEY=VALUE"),
        (["--identities", "3"], "--identities 3"),
        (["--sizes", "96"], "invalid choice: 96"),
        (["--reference", "no/such/model.pt"], "--reference no/such/model.pt: no such file"),
    ],
)
def test_the_study_refuses_bad_arguments_before_any_work(arguments, message, capsys, monkeypatch):
    from studies.learning_curve import __main__ as study

    assert_refused_before_training(study, arguments, message, capsys, monkeypatch)


@pytest.mark.slow
def test_a_toy_curve_trains_snapshots_scores_and_plots(tmp_path):
    from PIL import Image

    from studies.learning_curve import __main__ as study

    quick = ["data.init_args.num_workers=0", "data.init_args.persistent_workers=false", "data.init_args.batch_size=4"]
    imitator = quick + [
        f"data.init_args.target_root={tmp_path / 'mix'}",
        "data.init_args.generate={count: 16, size: 64, seed: 0, prior: neutral_mix}",
        "trainer.max_epochs=1",
        "trainer.callbacks=[]",
    ]
    regression = quick + [
        f"data.init_args.target_root={tmp_path / 'game'}",
        "data.init_args.generate={count: 24, size: 64, seed: 0}",
        "data.init_args.val_fraction=0.25",
        f"data.init_args.source={{kind: synthetic, root: {tmp_path / 'photo'}, identities_per_batch: 2, "
        "photos_per_identity: 2, val_fraction: 0.25, "
        "generate: {count: 32, size: 64, seed: 1, renders_per_identity: 4}}",
        "trainer.limit_train_batches=2",
        "trainer.limit_val_batches=1",
        'trainer.callbacks=[{"class_path": "callbacks.shrinkage.ShrinkageCalibration"}]',
    ]
    arguments = ["--objectives", "paper", "--sizes", "64", "--epochs", "2", "--identities", "20"]
    arguments += ["--pairs-per-fold", "2", "--resamples", "20", "--runs", str(tmp_path / "runs")]
    arguments += ["--root", str(tmp_path / "bench"), "--out", str(tmp_path / "out")]
    arguments += [flag for s in regression for flag in ("--set", s)]
    arguments += [flag for s in imitator for flag in ("--imitator-set", s)]
    report = study.main(arguments)
    steps = [row["step"] for row in report["curve"]]
    assert steps == [2, 4] and [row["screenshots_seen"] for row in report["curve"]] == [8, 16]
    assert "default" in report["rows"] and {"truth", "neutral"} <= set(report["rows"])
    with Image.open(tmp_path / "out" / "learning_curve.png") as picture:
        assert picture.size[0] > 800 and len(set(picture.convert("L").getdata())) > 10  # drawn, not blank


def test_an_interrupted_fits_snapshots_are_dropped_before_it_is_trained_again(tmp_path, monkeypatch):
    from studies.learning_curve import curve

    stale = tmp_path / "curve-paper-64" / "snapshots" / "step0000050.ckpt"
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"from a fit that was killed")
    fits = []
    monkeypatch.setattr(curve, "imitator", lambda size, runs, extra: runs / "demo-imitator")
    monkeypatch.setattr(curve, "fit", lambda configs, name, runs, extra: fits.append(name))
    assert curve.train("paper", 64, 2, tmp_path) == [] and fits == ["curve-paper-64"] and not stale.exists()
