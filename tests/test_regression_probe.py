"""bench.regression_probe: two steps of the demo networks on tiny fake sets write a log of finite numbers."""

import argparse
import json
import math

import numpy as np
import pytest
from fakes import TinyExtractor, fake_parameters, write_imitator_checkpoint, write_screenshot_set

import lightning_modules.regression as regression
from bench.regression_probe import main, setting
from game.framing import TEMPLATE

SIZE = 64  # the demo's, which the probe reads from experiments/demo/main.yaml


def fake_photo_set(root, people: int, per_person: int = 2):
    """A synthetic-photo set as game.dataset writes one: photo-style screenshots plus identities.npy and points.npy,
    the photos of a person sharing their parameters."""
    parameters = np.repeat(fake_parameters(people, seed=1), per_person, axis=0)
    root = write_screenshot_set(root, len(parameters), SIZE, style="photo", parameters=parameters)
    np.save(root / "identities.npy", np.repeat(np.arange(people), per_person))
    np.save(root / "points.npy", np.broadcast_to(TEMPLATE * SIZE, (len(parameters), 5, 2)).astype(np.float32))
    return root


def test_setting_parses_numbers_flags_and_words():
    assert setting("lambda_domain=0") == ("lambda_domain", 0.0)
    assert setting("parameter_prior_weight=5e-2") == ("parameter_prior_weight", 0.05)
    assert setting("l2_mode=norm") == ("l2_mode", "norm")
    assert setting("differ_on_source=false") == ("differ_on_source", False)
    with pytest.raises(argparse.ArgumentTypeError, match="KEY=VALUE"):
        setting("lambda_domain")


def test_two_steps_write_one_row_per_evaluation(tmp_path, monkeypatch):
    # Stand-in F_3d / F_id: the real ones cost seconds per step on a CPU, and test_regression covers them.
    monkeypatch.setattr(regression, "build_face_geometry", lambda name, checkpoint=None: TinyExtractor())
    monkeypatch.setattr(regression, "build_face_id", lambda name, checkpoint=None: TinyExtractor())
    monkeypatch.setenv("PL_GLOBAL_SEED", "0")  # the probe seeds globally; restored after the test
    # The demo's batches are 16 screenshots and 8 people x 2 photos, with 5 % of each set held out: 20
    # screenshots and 160 people give one batch of each for validation.
    screenshots = write_screenshot_set(tmp_path / "screenshots", count=20, size=SIZE)
    photos = fake_photo_set(tmp_path / "photos", people=160)
    imitator = write_imitator_checkpoint(tmp_path / "imitator.ckpt")
    log = main(
        [
            "tiny",
            "--steps",
            "2",
            "--eval-every",
            "1",
            "--lr",
            "1e-3",
            "--device",
            "cpu",
            "--set",
            "parameter_prior_weight=0.05",
            "--imitator",
            str(imitator),
            "--target-root",
            str(screenshots),
            "--source-root",
            str(photos),
            "--out",
            str(tmp_path / "out"),
        ]
    )

    assert json.loads((tmp_path / "out" / "tiny.json").read_text()) == log
    assert log["settings"]["set"] == {"parameter_prior_weight": 0.05} and len(log["top10_parameters"]) == 10
    rows = log["rows"]
    assert [r["step"] for r in rows] == [1, 2]
    for r in rows:
        assert {"restored", "domain", "contrastive", "consistency", "parameter_prior"} <= set(r)
        numbers = [v for k, v in r.items() if k != "corr_top10"] + r["corr_top10"]
        assert len(r["corr_top10"]) == 10 and all(math.isfinite(v) for v in numbers), r
