"""studies.photo_reader: the variants' fit commands and configs, the refusals, and the study trained, reused and
scored end to end on a tiny set (slow)."""

from __future__ import annotations

from dataclasses import asdict

import pytest
import yaml
from study_checks import assert_refused_before_training

from game.photo_extras import PhotoExtras
from studies.photo_reader.readers import REPO, VARIANTS, fit_command


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_the_fit_command_composes_base_then_the_variants_overlays_with_its_seed_and_name(tmp_path, variant):
    command = fit_command(variant, 4, tmp_path)
    configs = [command[i + 1] for i, flag in enumerate(command) if flag == "--config"]
    assert configs == ["experiments/features/base.yaml", *VARIANTS[variant]]
    assert all((REPO / config).is_file() for config in configs)
    text = " ".join(command)
    assert "--seed_everything 4" in text and f"--run.name features-{variant}-s4" in text


@pytest.mark.parametrize(
    "overlay, changed",
    [
        ("extras.yaml", {"extras"}),
        ("extras_100k.yaml", {"extras", "count"}),
        ("realistic.yaml", {"extras", "prior"}),
    ],
)
def test_each_training_set_differs_from_the_base_set_only_in_what_its_overlay_says(overlay, changed):
    base = yaml.safe_load((REPO / "experiments/features/base.yaml").read_text())["data"]["init_args"]
    other = yaml.safe_load((REPO / "experiments/features" / overlay).read_text())["data"]["init_args"]
    assert other["target_root"] != base["target_root"]
    kept = {k: v for k, v in base["generate"].items() if k not in changed}
    assert {k: v for k, v in other["generate"].items() if k not in changed} == kept
    assert set(other["generate"]["extras"]) == set(asdict(PhotoExtras()))
    assert all(0 < p < 1 for p in other["generate"]["extras"].values())
    assert other["generate"].get("prior", "uniform") in ("uniform", "realistic")


@pytest.mark.parametrize(
    "arguments, message",
    [
        (["--set", "trainer.max_steps"], "--set takes KEY=VALUE"),
        (["--identities", "3"], "--identities 3"),
        (["--variants", "mesh"], "invalid choice: 'mesh'"),
        (["--default", "no/such/model.pt"], "--default no/such/model.pt"),
        (["--variants", "pixels", "--means", "pixels-extras"], "--means pixels-extras: not among --variants"),
    ],
)
def test_the_study_refuses_bad_arguments_before_any_work(arguments, message, capsys, monkeypatch):
    from studies.photo_reader import __main__ as study

    assert_refused_before_training(study, arguments, message, capsys, monkeypatch)


@pytest.mark.slow
def test_the_study_trains_reuses_and_scores_a_pixel_reader_and_its_mean_with_the_default_model(tmp_path):
    from studies.photo_reader import __main__ as study

    settings = [
        f"data.init_args.target_root={tmp_path / 'photo'}",
        "data.init_args.generate={count: 24, size: 64, seed: 3, style: photo, renders_per_identity: 1}",
        "data.init_args.val_fraction=0.25",
        "data.init_args.batch_size=6",
        "data.init_args.num_workers=0",
        "data.init_args.persistent_workers=false",
        "trainer.max_epochs=1",
    ]
    arguments = ["--variants", "pixels", "--identities", "20", "--pairs-per-fold", "2"]  # --default: the shipped model
    arguments += ["--resamples", "20", "--runs", str(tmp_path / "runs"), "--root", str(tmp_path / "bench")]
    arguments += ["--out", str(tmp_path / "out")] + [flag for setting in settings for flag in ("--set", setting)]
    report = study.main(arguments)
    assert set(report["rows"]) == {"default", "pixels-s0", "mean-pixels-s0", "truth", "neutral", "face_id"}
    assert report["means"] == {"mean-pixels-s0": ["default", "pixels-s0"]}
    assert 0.5 < report["rows"]["pixels-s0"]["visible_rmse_ratio"] < 2
    assert (tmp_path / "out" / "TABLE.md").read_text().startswith("# Photo readers")
    made = {name: (REPO / path).stat().st_mtime for name, path in report["checkpoints"].items()}
    again = study.main(arguments)  # a finished run is reused, not trained again
    assert {name: (REPO / path).stat().st_mtime for name, path in again["checkpoints"].items()} == made
