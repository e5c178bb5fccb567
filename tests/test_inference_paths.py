"""bench/inference.py's default run (bench/inference_paths.py): the report's schema, on a toy run and on the committed
results. Speed itself is never asserted here: it is a ratio measured in one run of the bench."""

from __future__ import annotations

import json

import pytest
import torch

import bench.inference as inference
from bench import inference_paths
from eval.fast_inference import PATHS
from models.readers import EncoderRegressorReader
from models.regressor import Regressor
from models.vqvae2 import VQVAE2


def tiny_paper_reader(size: int) -> torch.nn.Module:
    torch.manual_seed(0)
    encoder = VQVAE2(size, channel=16, n_res_block=1, n_res_channel=8, embed_dim=8, n_embed=16, kmeans_init=False)
    return EncoderRegressorReader(encoder, Regressor(size, in_channels=16, channels=(8, 8, 8, 8, 8))).eval()


def no_compiler(*args, **kwargs):
    raise RuntimeError("no compiler here")


def check_row(row: dict, matmul: float) -> None:
    """What every row promises: images/s and utilisation per path, eager among them, the chosen path correct and
    the fastest correct one, ratios to eager."""
    assert row["model"] in inference_paths.MODELS and row["size"] in inference_paths.SIZES and row["batch"] >= 1
    assert "eager" in row["paths"] and set(row["paths"]) <= set(PATHS)
    for result in row["paths"].values():
        assert result["images_per_second"] > 0 and result["flop_utilisation"] > 0
        expected = result["images_per_second"] * row["flops_per_image"] / matmul
        assert result["flop_utilisation"] == pytest.approx(expected, rel=1e-9)
        assert result["correct"] == (result["max_abs_difference"] <= 1e-4)
        assert result["first_call_seconds"] > 0
    correct = {name: r["images_per_second"] for name, r in row["paths"].items() if r["correct"]}
    assert row["chosen"] == max(correct, key=correct.get)
    assert row["paths"]["eager"]["speedup_over_eager"] == 1.0


def test_a_toy_run_reports_every_path_and_records_a_failing_one(tmp_path, monkeypatch):
    monkeypatch.setattr(inference_paths, "paper_reader", tiny_paper_reader)
    monkeypatch.setattr(torch, "compile", no_compiler)
    readme = inference.README.read_text()
    out = tmp_path / "inference.json"
    argv = ["--models", "paper", "--sizes", "64", "--rounds", "1", "--f2p-steps", "0", "--out", str(out)]
    report = inference.main(argv)
    assert json.loads(out.read_text()) == report
    assert inference.README.read_text() == readme, "only the run into bench/results rewrites the README"
    (row,) = report["rows"]
    check_row(row, report["matmul_flops_per_second"])
    assert set(row["paths"]) == {"eager", "channels_last", "onnxruntime"}
    assert [(e["path"], "no compiler here" in e["error"]) for e in report["errors"]] == [("compile", True)]
    assert report["alignment"]["align_faces_ms"] > 0 and report["alignment"]["align_photo_ms"] > 0
    assert len(report["load_average_at_start"]) == 3 and report["torch_threads"] >= 1
    assert "| paper | 64 |" in inference_paths.readme_block(report)


def test_the_committed_results_have_every_model_size_and_path():
    report = json.loads(inference.RESULTS.read_text())
    if "rows" not in report or not report["rows"] or "paths" not in report["rows"][0]:
        pytest.skip("bench/results/inference.json predates the inference paths: run python -m bench.inference")
    matmul = report["matmul_flops_per_second"]
    assert {(r["model"], r["size"]) for r in report["rows"]} == {
        (m, s) for m in inference_paths.MODELS for s in inference_paths.SIZES
    }
    for row in report["rows"]:
        check_row(row, matmul)
        assert set(row["paths"]) | {e["path"] for e in report["errors"] if e["size"] == row["size"]} >= set(PATHS)
    assert report["alignment"]["align_faces_ms"] > 0
    text = inference.README.read_text()
    for row in report["rows"]:
        assert f"| {row['model']} | {row['size']} |" in text


def test_the_app_round_trip_is_timed_as_the_page_handler_does_it():
    from bench.inference_paths import app_round_trip_milliseconds

    trip = app_round_trip_milliseconds(size=64, moves=2)
    assert trip["size"] == 64 and trip["moves"] == 2 and len(trip["load_average"]) == 3
    assert 0 < trip["best_ms"] <= trip["median_ms"]
