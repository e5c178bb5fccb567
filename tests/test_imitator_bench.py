"""bench/imitator.py: PSNR/SSIM of a checkpoint against the engine, as JSON."""

import json
import math

import numpy as np
import pytest
import torch
from fakes import fake_render, fake_render_batch, write_network_checkpoint
from torch import nn

import bench.imitator as bench
from models.imitator import Imitator


def write_checkpoint(path, net):
    """The parts of a Lightning checkpoint that load_network reads."""
    write_network_checkpoint(path, net=net)


class FixedPicture(nn.Module):
    """A stand-in imitator that renders one fixed picture whatever the parameters; its pixels are whole uint8
    levels, so an engine that returns the same picture shifted by d levels is off by exactly d / 255."""

    image_size, num_parameters = 16, 267

    def __init__(self) -> None:
        super().__init__()
        levels = torch.randint(
            40, 200, (3, self.image_size, self.image_size), generator=torch.Generator().manual_seed(0)
        )
        self.register_buffer("picture", levels.float() / 255)

    def forward(self, parameters: torch.Tensor) -> torch.Tensor:
        return self.picture.expand(len(parameters), -1, -1, -1)

    def as_uint8(self, count: int, shift: int = 0) -> np.ndarray:
        picture = (self.picture * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
        return np.repeat(picture[None] + np.uint8(shift), count, axis=0)


def test_bench_reports_psnr_and_ssim_as_json(tmp_path, monkeypatch):
    monkeypatch.setattr(bench, "render_with_engine", lambda p, size: np.stack([fake_render(row, size) for row in p]))
    write_checkpoint(tmp_path / "imitator.ckpt", Imitator(image_size=64))
    out = tmp_path / "report.json"
    report = bench.main(
        [
            "--checkpoint",
            str(tmp_path / "imitator.ckpt"),
            "--count",
            "12",
            "--batch-size",
            "5",
            "--device",
            "cpu",
            "--out",
            str(out),
        ]
    )
    assert json.loads(out.read_text()) == report
    assert report["count"] == 12 and report["image_size"] == 64
    assert np.isfinite(report["psnr_db"]) and -1.0 <= report["ssim"] <= 1.0


def test_scale_zero_asks_for_the_neutral_face(tmp_path, monkeypatch):
    seen = []
    monkeypatch.setattr(
        bench, "render_with_engine", lambda p, size: seen.append(p) or np.stack([fake_render(row, size) for row in p])
    )
    write_checkpoint(tmp_path / "imitator.ckpt", Imitator(image_size=64))
    report = bench.main(
        [
            "--checkpoint",
            str(tmp_path / "imitator.ckpt"),
            "--count",
            "3",
            "--scale",
            "0",
            "--device",
            "cpu",
            "--out",
            str(tmp_path / "report.json"),
        ]
    )
    assert not np.concatenate(seen).any() and report["prior"] == "uniform [-2.5, 2.5] x 0"


def test_held_out_parameters_are_seeded_and_in_range():
    a, b = bench.held_out_parameters(5, 1), bench.held_out_parameters(5, 1)
    np.testing.assert_array_equal(a, b)
    assert a.shape == (5, 267) and a.dtype == np.float32 and np.abs(a).max() <= 2.5


@pytest.mark.slow
def test_bench_with_the_real_engine(tmp_path):
    pytest.importorskip("moderngl", reason="the engine renders with moderngl")
    write_checkpoint(tmp_path / "imitator.ckpt", Imitator(image_size=64))
    report = bench.main(
        [
            "--checkpoint",
            str(tmp_path / "imitator.ckpt"),
            "--count",
            "4",
            "--device",
            "cpu",
            "--out",
            str(tmp_path / "report.json"),
        ]
    )
    assert np.isfinite(report["psnr_db"])


def test_identical_pictures_score_infinite_psnr_and_ssim_one(monkeypatch):
    net = FixedPicture()
    monkeypatch.setattr(bench, "render_with_engine", lambda p, size: net.as_uint8(len(p)))
    metrics = bench.evaluate(net, bench.held_out_parameters(4, 0), batch_size=3)
    assert metrics["psnr_db"] == math.inf and metrics["mse"] == 0 and metrics["mae"] == 0
    assert metrics["ssim"] == pytest.approx(1.0, abs=1e-6)


def test_known_offsets_give_the_known_psnr_mse_and_mae(monkeypatch):
    """Engine pictures d = 4, 8, 16 levels brighter than the imitator's: PSNR_i = 20 log10(255 / d_i) per image,
    averaged over images (not over pixels), across batches."""
    net, shifts = FixedPicture(), [4, 8, 16]
    rows = iter(shifts)  # the engine's pictures, row by row over the batches

    def engine(parameters, size):
        return np.concatenate([net.as_uint8(1, next(rows)) for _ in parameters])

    monkeypatch.setattr(bench, "render_with_engine", engine)
    metrics = bench.evaluate(net, bench.held_out_parameters(3, 0), batch_size=2)
    psnr = torch.tensor([20 * math.log10(255 / d) for d in shifts], dtype=torch.float64)
    assert metrics["psnr_db"] == pytest.approx(float(psnr.mean()), abs=1e-3)  # 36.13 dB
    assert metrics["psnr_db_std"] == pytest.approx(float(psnr.std()), abs=1e-3)
    assert metrics["mse"] == pytest.approx(np.mean(np.square(shifts)) / 255**2, rel=1e-4)
    assert metrics["mae"] == pytest.approx(np.mean(shifts) / 255, rel=1e-4)
    assert metrics["ssim"] < 1


def test_a_trained_imitator_scores_better_than_an_untrained_one(trained_imitator, tmp_path, monkeypatch):
    """The same tiny net before and after a few seconds of training on the stand-in engine's pictures."""
    monkeypatch.setattr(bench, "render_with_engine", fake_render_batch)
    torch.manual_seed(0)  # the trained one's initial weights
    write_checkpoint(tmp_path / "untrained.ckpt", Imitator(image_size=64, channels=(32, 32, 16, 16)).eval())
    reports = {
        name: bench.main(
            ["--checkpoint", str(path), "--count", "16", "--device", "cpu", "--out", str(tmp_path / f"{name}.json")]
        )
        for name, path in [("trained", trained_imitator), ("untrained", tmp_path / "untrained.ckpt")]
    }
    trained, untrained = reports["trained"], reports["untrained"]
    assert trained["psnr_db"] > untrained["psnr_db"] + 3, (trained, untrained)
    assert trained["mse"] < 0.5 * untrained["mse"]  # SSIM is left out: a flat grey blob scores well on flat pictures
