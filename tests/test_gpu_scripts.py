"""bench/gpu_check.sh and bench/gpu_scale.sh: the one-call GPU scripts parse, and the scale study's CPU rehearsal
runs every step to a report (the GPU run itself needs a lent machine)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPTS = ("gpu_check.sh", "gpu_scale.sh", "gpu_lib.sh")


@pytest.mark.parametrize("script", SCRIPTS)
def test_the_script_parses(script):
    result = subprocess.run(["bash", "-n", str(REPO / "bench" / script)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("script", ("gpu_check.sh", "gpu_scale.sh"))
def test_the_script_refuses_to_run_without_an_output_folder(script):
    env = {key: value for key, value in os.environ.items() if key != "OUT"}
    result = subprocess.run(["bash", str(REPO / "bench" / script)], capture_output=True, text=True, env=env, cwd=REPO)
    assert result.returncode != 0 and "set OUT to the results folder" in result.stderr


@pytest.mark.slow
def test_the_scale_rehearsal_runs_every_step_and_scores_the_regression(tmp_path):
    env = os.environ | {
        "DEVICE": "cpu",
        "PY": sys.executable,
        "OUT": str(tmp_path / "out"),
        "RUNS": str(tmp_path / "runs"),
        "DATA": str(tmp_path / "data"),
        "OMP_NUM_THREADS": "1",
    }
    subprocess.run(["bash", str(REPO / "bench/gpu_scale.sh")], env=env, cwd=REPO, check=True, capture_output=True)
    summary = json.loads((tmp_path / "out/scale_results.json").read_text())
    assert {step["name"]: step["rc"] for step in summary["steps"]} == dict.fromkeys(
        ("render_game", "render_photos", "fit_imitator", "fit_main", "likeness"), 0
    )
    assert summary["fit_main"]["optimizer_steps"] > 0 and summary["fit_imitator"]["screenshots_seen"] > 0
    rows = summary["likeness"]["rows"]
    assert set(rows) >= {"paper", "truth", "neutral"} and rows["truth"]["likeness"] > rows["neutral"]["likeness"]
