"""make demo's report: the likeness benchmark's section names what the default model beats FastF2P on."""

from __future__ import annotations

from pathlib import Path

import pytest

from studies.demo.report import likeness_section

SCORES = ("visible_rmse_ratio", "all_rmse_ratio", "likeness_gap_closed", "lineup_top1", "verification")


def _report(default: dict, fastf2p: dict) -> dict:
    table = "| row | ... |\n|---|---|\n| default | 1 |\n"
    return {"rows": {"default": default, "fastf2p": fastf2p}, "markdown": f"# Likeness benchmark\n\n{table}"}


@pytest.mark.parametrize(
    ("default", "expected"),
    [
        # lower RMSE ratios and higher likeness, lineup, verification than FastF2P's (1.2, 1.2, 0.4, 0.6, 0.7)
        ((0.9, 0.95, 0.6, 0.8, 0.9), "5 of 5 scores"),
        ((1.3, 1.25, 0.6, 0.8, 0.9), "3 of 5 scores (likeness_gap_closed, lineup_top1, verification)"),
        ((1.3, 1.25, 0.3, 0.5, 0.6), "0 of 5 scores (none)"),
    ],
)
def test_the_section_counts_the_scores_where_the_default_model_beats_fastf2p(default, expected):
    fastf2p = dict(zip(SCORES, (1.2, 1.2, 0.4, 0.6, 0.7)))
    lines = likeness_section(_report(dict(zip(SCORES, default)), fastf2p))
    assert lines[-1].startswith(f"The default model beats FastF2P on {expected}")
    assert "# Likeness benchmark" not in "\n".join(lines) and "| default | 1 |" in "\n".join(lines)


def test_without_fastf2p_the_section_is_the_table_alone():
    report = _report(dict(zip(SCORES, (0.9,) * 5)), {})
    del report["rows"]["fastf2p"]
    assert not any("beats FastF2P" in line for line in likeness_section(report))


@pytest.mark.parametrize(("identities", "own_root"), [(1000, False), (50, True)])
def test_the_likeness_stage_scores_the_default_model_both_regressions_and_fastf2p(
    tmp_path, monkeypatch, identities, own_root
):
    import json
    import subprocess

    from studies.demo import stages

    calls = []

    def fake_run(command, **kwargs):
        calls.append(command)
        out = Path(command[command.index("--out") + 1])
        out.write_text(json.dumps({"rows": {}}))
        out.with_suffix(".md").write_text("# Likeness benchmark\n\n| row |\n")

    monkeypatch.setattr(subprocess, "run", fake_run)
    checkpoints = {"ours": tmp_path / "main.ckpt", "ours_supervised": tmp_path / "supervised.ckpt"}
    report = stages.likeness(checkpoints, tmp_path / "fastf2p.ckpt", tmp_path, identities)
    (command,) = calls
    assert command[1:3] == ["-m", "bench.likeness"]
    pairs = {(flag, value) for flag, value in zip(command, command[1:])}
    assert {
        ("--ckpt", f"default={stages.DEFAULT_MODEL}"),
        ("--ckpt", f"paper={checkpoints['ours']}"),
        ("--ckpt", f"supervised={checkpoints['ours_supervised']}"),
        ("--baseline", f"fastf2p={tmp_path / 'fastf2p.ckpt'}"),
        ("--identities", str(identities)),
    } <= pairs
    assert ("--root" in command) == own_root  # a smaller benchmark is its own set, never a prefix of the full one
    assert report["rows"] == {} and report["markdown"].startswith("# Likeness benchmark")
