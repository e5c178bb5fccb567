"""The CLI with the real demo config, shrunk: one run folder per run, W&B offline, exact resume."""

import csv
import os
import sys
from pathlib import Path

import pytest
from fakes import small_fit_args, write_screenshot_set
from PIL import Image

from lightning_modules.cli import main
from lightning_modules.imitator import ImitatorModule

DEMO = "experiments/demo/imitator.yaml"


@pytest.fixture
def screenshots(tmp_path):
    # 20 rows, 5% val -> 1 val row and 19 train rows: 2 steps of 8 per epoch.
    return write_screenshot_set(tmp_path / "set", count=20, size=64)


@pytest.fixture(autouse=True)
def offline(tmp_path, monkeypatch):
    monkeypatch.chdir(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # configs are repo-relative
    monkeypatch.setattr(sys, "argv", ["lightning_modules.cli"])  # the CLI gets its args from each test
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))


def cli_args(root, runs, *extra):
    return [
        "fit",
        "--config",
        DEMO,
        *small_fit_args(root, runs),
        "--trainer.limit_val_batches",
        "1",
        "--trainer.enable_progress_bar",
        "false",
        *extra,
    ]


def train_losses(run_dir):
    """Per-step training losses in the order they were logged (a resumed run appends to metrics.csv)."""
    with open(run_dir / "metrics.csv") as handle:
        return [float(row["train/loss_step"]) for row in csv.DictReader(handle) if row.get("train/loss_step")]


def test_demo_config_runs_two_steps_into_one_run_folder(screenshots, tmp_path):
    cli = main(cli_args(screenshots, tmp_path / "runs", "--trainer.max_steps", "2", "--run.wandb", "true"))
    assert cli.trainer.global_step == 2
    run_dir = tmp_path / "runs" / "demo-imitator" / "version_0"
    assert (run_dir / "config.yaml").is_file() and (run_dir / "metrics.csv").is_file()
    assert (run_dir / "checkpoints" / "last.ckpt").is_file()
    assert list((run_dir / "wandb").glob("offline-run-*")), "W&B writes offline into the run folder"
    module = ImitatorModule.load_from_checkpoint(run_dir / "checkpoints" / "last.ckpt")
    assert module.net.image_size == 64 and module.hparams.loss == "l2"


def test_resume_from_last_reproduces_the_next_steps(screenshots, tmp_path):
    # 2 steps per epoch. Run A stops at the first epoch's end, then resumes from last.ckpt for two
    # more steps; run B goes straight to step 4. The losses must agree: weights, BatchNorm
    # statistics, Adam moments, the scheduler and the data order all came back.
    runs = tmp_path / "runs"
    common = ("--run.wandb", "false", "--trainer.log_every_n_steps", "1")
    main(cli_args(screenshots, runs, "--trainer.max_steps", "2", "--run.name", "a", *common))
    main(cli_args(screenshots, runs, "--trainer.max_steps", "4", "--run.name", "a", "--ckpt_path", "last", *common))
    main(cli_args(screenshots, runs, "--trainer.max_steps", "4", "--run.name", "b", *common))
    assert [p.name for p in (runs / "a").iterdir()] == ["version_0"]  # the resume wrote into the same folder
    resumed, straight = train_losses(runs / "a" / "version_0"), train_losses(runs / "b" / "version_0")
    assert len(resumed) == len(straight) == 4
    assert resumed == pytest.approx(straight, rel=1e-6, abs=1e-8)


def test_image_grid_lands_in_the_run_folder(screenshots, tmp_path):
    main(
        cli_args(
            screenshots,
            tmp_path / "runs",
            "--trainer.max_epochs",
            "1",
            "--run.wandb",
            "false",
            "--data.init_args.val_fraction",
            "0.4",
            "--trainer.limit_val_batches",
            "null",
        )
    )
    grids = list((tmp_path / "runs" / "demo-imitator" / "version_0" / "images").glob("step*.png"))
    assert len(grids) == 1
    assert Image.open(grids[0]).size == (2 * 64, 8 * 64)  # columns: engine | imitator; rows: 8 fixed val rows


def test_a_new_run_never_reuses_a_folder_with_checkpoints(tmp_path):
    from lightning_modules.run_folder import RunConfig, resolve_run_dir

    run = RunConfig(name="x", root=str(tmp_path))
    assert resolve_run_dir(run).name == "version_0"
    (tmp_path / "x" / "version_0" / "checkpoints").mkdir()
    assert resolve_run_dir(run).name == "version_1"
    assert resolve_run_dir(run, "last").name == "version_1"  # the latest
    old = tmp_path / "x" / "version_0" / "checkpoints" / "last.ckpt"
    assert resolve_run_dir(run, str(old)) == old.parent.parent  # a checkpoint's own run
    with pytest.raises(FileExistsError, match="resume it with --ckpt_path last"):
        resolve_run_dir(RunConfig(name="x", root=str(tmp_path), version="version_0"))


@pytest.mark.parametrize(
    "overlay, run_name, prior",
    [
        (None, "demo-imitator", "neutral_mix"),
        ("experiments/demo/imitator_uniform.yaml", "demo-imitator-uniform", "uniform"),
    ],
)
def test_demo_imitator_configs_render_their_set_with_their_prior(tmp_path, overlay, run_name, prior):
    """The demo imitator renders a missing set with the neutral_mix prior; the uniform overlay with the paper's."""
    import json

    import numpy as np
    import yaml

    configs = [DEMO] + ([overlay] if overlay else [])
    generate = {}
    for config in configs:  # the settings the files give, only the count made small
        generate |= yaml.safe_load(Path(config).read_text()).get("data", {}).get("init_args", {}).get("generate", {})
    root = tmp_path / "set"
    cli = main(
        [
            "fit",
            *[arg for config in configs for arg in ("--config", config)],
            *small_fit_args(root, tmp_path / "runs"),
            "--data.init_args.generate",
            json.dumps(generate | {"count": 20}),
            "--run.wandb",
            "false",
            "--trainer.max_steps",
            "1",
            "--trainer.limit_val_batches",
            "1",
            "--trainer.enable_progress_bar",
            "false",
        ]
    )
    assert cli.trainer.global_step == 1
    assert (tmp_path / "runs" / run_name / "version_0" / "checkpoints" / "last.ckpt").is_file()
    assert json.loads((root / "manifest.json").read_text())["prior"] == prior
    zeros = (np.load(root / "parameters.npy") == 0).mean()
    assert zeros > 0.05 if prior == "neutral_mix" else zeros == 0
