"""studies.feature_groups: each variant's reader reads its groups' columns of one shared extractor, and the study
trains, reuses and scores its variants end to end on a tiny set (slow)."""

from __future__ import annotations

import pytest
import torch
from study_checks import assert_refused_before_training

from models.face_features import FaceFeatures
from models.readers import FaceFeatureReader
from studies.feature_groups.groups import VARIANTS, GroupSlice, fit_command, shared_features


@pytest.fixture(scope="module")
def images() -> torch.Tensor:
    return torch.rand(4, 3, 64, 64, generator=torch.Generator().manual_seed(0))


@pytest.fixture(scope="module")
def shared(images) -> FaceFeatureReader:
    features = shared_features()
    features.frozen_features(images)
    return features


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_a_variants_slice_of_the_shared_features_is_what_its_own_extractor_computes(images, shared, variant):
    expected = FaceFeatures(VARIANTS[variant])(images)
    sliced = GroupSlice(shared, VARIANTS[variant])(images)  # memoised: the shared nets do not run again
    torch.testing.assert_close(sliced, expected, rtol=1e-5, atol=1e-5)
    assert len(shared._cache) == len(images)


def test_the_fit_command_names_the_groups_the_seed_and_the_cache(tmp_path):
    command = fit_command("no_identity", 2, 50, tmp_path / "runs")
    text = " ".join(command)
    assert "--model.init_args.net.init_args.features [mesh, colour]" in text
    assert "--seed_everything 2" in text and "--run.name feature-groups-no_identity-s2" in text
    assert "--trainer.max_steps 50" in text
    assert "--config experiments/features/cached.yaml" in text


@pytest.mark.slow
def test_the_study_trains_reuses_and_scores_every_variant(tmp_path, monkeypatch):
    from studies.feature_groups import __main__ as study

    data = tmp_path / "photo"
    settings = [
        f"data.init_args.target_root={data}",
        "data.init_args.generate={count: 24, size: 64, seed: 3, style: photo, renders_per_identity: 1}",
        "data.init_args.val_fraction=0.25",
        "data.init_args.batch_size=6",
        "data.init_args.num_workers=0",
        "data.init_args.persistent_workers=false",
        "model.init_args.net.init_args.statistics_batches=1",
    ]
    arguments = ["--variants", "all", "colour", "--all-seeds", "0", "--steps", "3", "--identities", "20"]
    arguments += ["--pairs-per-fold", "2", "--resamples", "20", "--runs", str(tmp_path / "runs")]
    arguments += ["--root", str(tmp_path / "bench"), "--out", str(tmp_path / "out")]
    arguments += [flag for setting in settings for flag in ("--set", setting)]
    report = study.main(arguments)
    assert set(report["rows"]) == {"all-s0", "colour-s0", "truth", "neutral", "face_id"}
    assert (tmp_path / "photo.features.npz").is_file()  # the first fit's features, beside the training set
    assert (tmp_path / "out" / "TABLE.md").read_text().startswith("# Feature groups")
    made = {name: (tmp_path / path).stat().st_mtime for name, path in report["checkpoints"].items()}
    again = study.main(arguments)  # finished runs are reused, not trained again
    assert {name: (tmp_path / path).stat().st_mtime for name, path in again["checkpoints"].items()} == made


@pytest.mark.parametrize(
    "arguments, message",
    [
        (["--steps", "0"], "--steps must be at least 1"),
        (["--set", "trainer.max_steps"], "--set takes KEY=VALUE"),
        (["--identities", "3"], "--identities 3"),
        (["--variants", "eyes"], "invalid choice: 'eyes'"),
    ],
)
def test_the_study_refuses_bad_arguments_before_any_work(arguments, message, capsys, monkeypatch):
    from studies.feature_groups import __main__ as study

    assert_refused_before_training(study, arguments, message, capsys, monkeypatch)
