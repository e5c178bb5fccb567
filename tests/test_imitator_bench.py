"""bench/imitator.py: PSNR/SSIM of a checkpoint against the engine, as JSON."""

import json

import numpy as np
import pytest
import torch
from fakes import fake_render

import bench.imitator as bench
from models.checkpoints import network_spec
from models.imitator import Imitator


def write_checkpoint(path, net):
    """The parts of a Lightning checkpoint that load_network reads."""
    state = {f"net.{k}": v for k, v in net.state_dict().items()}
    torch.save({"hyper_parameters": {"net": network_spec(net)}, "state_dict": state}, path)


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
