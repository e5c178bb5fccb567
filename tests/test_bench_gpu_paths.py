"""bench/inference.py and bench/training.py: the variant ladder and the --out reports, at toy sizes on the CPU."""

import json
import math

import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

import bench.inference as inference
import bench.training as training
from models.imitator import Imitator


class TinyFaceID(nn.Module):
    """A stand-in F_id: F2P's timing does not depend on which extractor it backpropagates through."""

    def forward(self, images):
        return nn.functional.adaptive_avg_pool2d(images, 4).flatten(1)


def failing_compile(*args, **kwargs):
    raise RuntimeError("no compiler here")


def test_variants_add_one_setting_each():
    assert inference.variant_settings("fp32") == dict.fromkeys(
        ("bf16", "channels_last", "cudnn_benchmark", "compile"), False
    )
    assert inference.variant_settings("channels_last") == {
        "bf16": True,
        "channels_last": True,
        "cudnn_benchmark": False,
        "compile": False,
    }
    assert all(inference.variant_settings("compile").values())


def test_inference_writes_a_row_per_variant_and_batch_and_records_failures(tmp_path, monkeypatch):
    monkeypatch.setattr("models.face_id.build_face_id", lambda name: TinyFaceID())
    monkeypatch.setattr(torch, "compile", failing_compile)
    readme, benchmark = inference.README.read_text(), torch.backends.cudnn.benchmark
    out = tmp_path / "inference_gpu.json"
    report = inference.main(
        [
            "--sizes",
            "64",
            "--batch",
            "1",
            "2",
            "--variants",
            "fp32",
            "bf16",
            "compile",
            "--f2p-batch",
            "1",
            "--f2p-steps",
            "1",
            "--out",
            str(out),
        ]
    )
    assert json.loads(out.read_text()) == report
    assert inference.README.read_text() == readme, "only the default CPU run rewrites the README table"
    assert [(r["variant"], r["batch"]) for r in report["rows"]] == [("fp32", 1), ("fp32", 2), ("bf16", 1), ("bf16", 2)]
    assert [(e["variant"], e["batch"]) for e in report["errors"]] == [("compile", 1), ("compile", 2)]
    assert "no compiler here" in report["errors"][0]["error"]
    assert report["device"] and report["matmul_flops_per_second"] > 0
    for row in report["rows"]:
        assert row["ours"]["images_per_second"] > 0 and row["ours"]["flops_per_image"] > 0
        assert row["flop_utilisation"] > 0 and row["conv_utilisation"] > 0 and row["f2p"]["batch"] == 1
    # k-means initialisation runs once, before counting: the count is per image, whatever the batch
    assert math.isclose(
        report["rows"][0]["ours"]["flops_per_image"], report["rows"][1]["ours"]["flops_per_image"], rel_tol=1e-3
    )
    assert torch.backends.cudnn.benchmark == benchmark, "the variant's cuDNN setting is restored"


def test_training_bench_reports_each_variant(tmp_path, monkeypatch):
    monkeypatch.setattr(torch, "compile", failing_compile)
    out = tmp_path / "training_gpu.json"
    report = training.main(
        [
            "--device",
            "cpu",
            "--size",
            "64",
            "--batch",
            "2",
            "--steps",
            "1",
            "--warmup",
            "0",
            "--variants",
            "fp32",
            "channels_last",
            "compile",
            "--out",
            str(out),
        ]
    )
    assert json.loads(out.read_text()) == report
    assert [r["variant"] for r in report["rows"]] == ["fp32", "channels_last"]
    assert [e["variant"] for e in report["errors"]] == ["compile"]
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        Imitator(image_size=64)(torch.zeros(2, 267))
    forward = counter.get_total_flops() / 2
    for row in report["rows"]:
        assert row["images_per_second"] > 0 and row["peak_memory_bytes"] is None and row["flop_utilisation"] > 0
        # a step is forward + backward (weights and activations): about three forwards, the first layer's input
        # gradient excepted
        assert 2.5 * forward < row["flops_per_image"] <= 3 * forward


@pytest.mark.parametrize("variant", ["fp32", "bf16"])
def test_training_step_moves_every_weight(variant):
    net = Imitator(image_size=64)
    before = [p.detach().clone() for p in net.parameters()]
    training.imitator_steps(64, 2, "cpu", variant, steps=1, warmup=0, net=net)
    assert all(not torch.equal(a, p) for a, p in zip(before, net.parameters())), "Adam stepped every weight"
