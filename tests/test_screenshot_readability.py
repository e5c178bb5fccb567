"""studies.screenshot_readability: its configs compose into the networks they name, and its command line fits a
network through the LightningCLI on a tiny set and writes what it measured."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import yaml
from fakes import fake_parameters, fake_render
from lightning.pytorch import LightningDataModule, LightningModule

from lightning_modules.cli import LikenessCLI
from models.readers import EncoderRegressorReader, TimmReader
from models.vqvae2 import Quantizer
from studies.screenshot_readability.__main__ import main
from studies.screenshot_readability.readability import (
    CONFIGS,
    NETWORKS,
    REPO,
    benchmark_score,
    config_files,
    load_reader,
    predict,
    run_name,
)


def composed(name: str) -> LikenessCLI:
    """The study's configs of network `name`, parsed and instantiated (nothing fitted, nothing read from disk)."""
    configs = [arg for path in config_files(name) for arg in ("--config", str(path))]
    return LikenessCLI(
        LightningModule, LightningDataModule, subclass_mode_model=True, subclass_mode_data=True, run=False, args=configs
    )


@pytest.mark.parametrize("name", NETWORKS)
def test_each_network_config_builds_its_reader_with_the_old_loops_settings(name):
    cli = composed(name)
    net = cli.model.net
    expected = {"resnet18": TimmReader, "demo": EncoderRegressorReader, "demo_unquantised": EncoderRegressorReader}
    assert type(net) is expected[name]
    assert any(isinstance(m, Quantizer) for m in net.modules()) == (name == "demo")
    assert cli.config.run.name == run_name(name)
    assert (cli.trainer.max_steps, cli.trainer.val_check_interval, cli.datamodule.hparams.batch_size) == (1000, 250, 64)
    assert 30000 * cli.datamodule.hparams.val_fraction == 1500
    with torch.no_grad():
        assert cli.model.eval()(torch.rand(2, 3, 64, 64)).parameters.shape == (2, 267)


def test_demo_networks_are_the_demo_regressions_encoder_and_regressor():
    demo = yaml.safe_load((REPO / "experiments/demo/main.yaml").read_text())["model"]["init_args"]
    study = yaml.safe_load((CONFIGS / "demo.yaml").read_text())["model"]["init_args"]["net"]["init_args"]
    assert study["encoder"] == demo["encoder"] and study["regressor"] == demo["regressor"]
    main_data = yaml.safe_load((REPO / "experiments/demo/main.yaml").read_text())["data"]["init_args"]
    base_data = yaml.safe_load((CONFIGS / "base.yaml").read_text())["data"]["init_args"]
    same = ("target_root", "generate", "val_fraction", "split_seed", "image_size")  # one split.json for both
    assert {key: base_data[key] for key in same} == {key: main_data[key] for key in same}


def test_fits_through_the_cli_and_writes_its_rows_held_out_score_and_table(tmp_path, screenshot_set):
    root = screenshot_set(count=40, size=64)  # 2 rows held out (5%)
    out, runs = tmp_path / "out", tmp_path / "runs"
    settings = ["--root", str(root), "--batch-size", "4", "--set", "data.init_args.num_workers=0"]
    (result,) = main(
        ["resnet18", "--steps", "2", "--eval-every", "1", *settings, "--runs", str(runs), "--out", str(out)]
    )
    assert json.loads((out / "resnet18.json").read_text()) == json.loads(json.dumps(result))
    assert result["run"] == str(runs / run_name("resnet18") / "version_0")
    assert [row["step"] for row in result["rows"]] == [1, 2]
    assert all(row["held_out_rmse_over_neutral"] > 0 for row in result["rows"])
    # The last checkpoint, scored again on the held-out rows, is what its last validation logged.
    assert result["held_out"]["rmse_ratio"] == pytest.approx(result["rows"][-1]["held_out_rmse_over_neutral"], abs=2e-4)
    assert result["trainable_parameters"] == sum(p.numel() for p in TimmReader("resnet18").parameters())
    assert json.loads((root / "split.json").read_text())["count"] == 40
    table = (out / "TABLE.md").read_text().splitlines()
    assert table[0].startswith("| network (trainable parameters) | held-out screenshots, step 1 / 2 |")
    assert table[2].startswith("| ResNet-18 from scratch (timm) (11.3 M) | ")
    assert table[2].endswith(" | - |")

    # --benchmark's score, on a stand-in benchmark: the RMSE over the neutral face's, pooled over every photo.
    checkpoint = runs / run_name("resnet18") / "version_0" / "checkpoints" / "last.ckpt"
    bench = fake_benchmark()
    images = torch.from_numpy(np.stack([bench.image(i) for i in range(bench.num_images)])).permute(0, 3, 1, 2) / 255
    predicted = predict(load_reader(checkpoint), images.float())
    expected = np.sqrt(((predicted - bench.parameters) ** 2).sum() / (bench.parameters**2).sum())
    score = benchmark_score(checkpoint, bench)
    assert score["ratio"] == pytest.approx(expected, rel=1e-5)
    assert score["interval"][0] <= score["ratio"] <= score["interval"][1]


def fake_benchmark(count: int = 6) -> SimpleNamespace:
    """A stand-in for eval.benchmarks' Benchmark: fake_render images of 3 people, 2 photos each."""
    parameters = fake_parameters(count, seed=5)
    images = [fake_render(row, 64) for row in parameters]
    return SimpleNamespace(
        num_images=count, image=images.__getitem__, parameters=parameters, identities=np.arange(count) // 2
    )


def test_unknown_network_is_refused(tmp_path):
    # --steps need not be a multiple of --eval-every: last.ckpt is also written at the end of fit (LastCheckpoint).
    with pytest.raises(SystemExit):
        main(["vgg", "--out", str(tmp_path)])
