"""make demo-ablations: the table aggregates seeds per variant, next to the paper's number."""

import json
from pathlib import Path

import pytest
import yaml
from torch import nn

import eval.descriptors
import eval.evaluate
import eval.recovery
import studies.ablations.__main__ as ablations_cli
import studies.ablations.variants as variants
from lightning_modules.run_folder import LastCheckpoint
from studies.ablations.variants import OVERLAYS, PAPER, VARIANTS, table

REPO = Path(__file__).resolve().parents[1]


def test_table_reports_mean_and_std_over_seeds_for_each_variant():
    run = {
        "accuracy": 0.6,
        "rmse_ratio": 1.0,
        "rmse_ratio_visible": 0.5,
        "correlation_visible": 0.2,
        "verdict": "level",
    }
    other = {
        "accuracy": 0.8,
        "rmse_ratio": 2.0,
        "rmse_ratio_visible": 0.7,
        "correlation_visible": 0.4,
        "verdict": "closer",
    }
    text = table({v: [run, other] for v in VARIANTS})
    assert set(PAPER) == set(VARIANTS) - {"supervised"}  # not a Table 3 row
    for variant in VARIANTS:
        paper = f"{PAPER[variant]:.4f}" if variant in PAPER else "-"
        assert (
            f"| {variant} | 0.7000 +- 0.1000 | 1.5000 +- 0.5000 | 0.6000 +- 0.1000 | 0.3000 +- 0.1000 | "
            f"1 of 2 | {paper} |"
        ) in text


def test_every_ablation_overlay_exists_and_changes_one_lambda_of_the_demo():
    demo = yaml.safe_load((REPO / "experiments/demo/main.yaml").read_text())["model"]["init_args"]
    for variant in set(VARIANTS) - set(OVERLAYS):
        overlay = yaml.safe_load((REPO / f"experiments/ablations/{variant}.yaml").read_text())["model"]["init_args"]
        assert list(overlay) == ["objective"] and len(overlay["objective"]) == 1
        ((name, value),) = overlay["objective"].items()
        assert name.startswith("lambda_") and demo["objective"][name] != value


def test_the_demo_overlays_the_table_runs_exist():
    assert all((REPO / config).is_file() for configs in OVERLAYS.values() for config in configs)


def fake_scores(variant: str, seed: int) -> dict:
    """What the benchmark gives a fake run: variant i, seed s -> accuracy 0.70 + 0.01 i + 0.02 s, RMSE ratio
    0.99 + 0.1 i + 0.01 s, visible ratio 0.9 - 0.1 i, correlation 0.1 + 0.2 s; 'closer' on seeds s < i mod 4."""
    i = VARIANTS.index(variant)
    return {
        "accuracy": 0.70 + 0.01 * i + 0.02 * seed,
        "rmse_ratio": 0.99 + 0.1 * i + 0.01 * seed,
        "verdict": "closer" if seed < i % 4 else "level",
        "rmse_ratio_visible": 0.9 - 0.1 * i,
        "correlation_visible": 0.1 + 0.2 * seed,
    }


# The table of the fake runs over seeds 0, 1, 2, worked out by hand (std over seeds, numpy's population std).
EXPECTED_ROWS = [
    "| full | 0.7200 +- 0.0163 | 1.0000 +- 0.0082 | 0.9000 +- 0.0000 | 0.3000 +- 0.1633 | 0 of 3 | 0.8875 |",
    "| with_domain | 0.7300 +- 0.0163 | 1.1000 +- 0.0082 | 0.8000 +- 0.0000 | 0.3000 +- 0.1633 | 1 of 3 | 0.8983 |",
    "| no_contrastive | 0.7400 +- 0.0163 | 1.2000 +- 0.0082 | 0.7000 +- 0.0000 | 0.3000 +- 0.1633 | 2 of 3 | 0.6172 |",
    "| no_consistency | 0.7500 +- 0.0163 | 1.3000 +- 0.0082 | 0.6000 +- 0.0000 | 0.3000 +- 0.1633 | 3 of 3 | 0.8842 |",
    "| supervised | 0.7600 +- 0.0163 | 1.4000 +- 0.0082 | 0.5000 +- 0.0000 | 0.3000 +- 0.1633 | 0 of 3 | - |",
]


class RunScores(nn.Module):
    """A stand-in regressor that carries its fake run's scores."""

    def __init__(self, checkpoint: Path) -> None:
        super().__init__()
        self.scores = json.loads(Path(checkpoint).read_text())


@pytest.fixture
def fake_runs(tmp_path, monkeypatch):
    """make demo-ablations over fake runs: each run folder's last.ckpt holds its scores, the verification protocol
    hands them back in eval.evaluate's layout, and training writes the checkpoint it was asked for. Returns the
    commands that trained."""
    trained = []

    def write_run(variant: str, seed: int, finished: bool = True) -> None:
        checkpoint = tmp_path / "runs" / f"ablation-{variant}-s{seed}" / "version_0" / "checkpoints" / "last.ckpt"
        checkpoint.parent.mkdir(parents=True, exist_ok=True)
        checkpoint.write_text(json.dumps(fake_scores(variant, seed) if finished else {"interrupted": True}))
        if finished:
            (checkpoint.parent / LastCheckpoint.FIT_COMPLETE).write_text("{}")

    def fake_fit(command, check, cwd):
        assert check and cwd == tmp_path
        trained.append(command)
        name = command[command.index("--run.name") + 1]
        variant, seed = name.removeprefix("ablation-").rsplit("-s", 1)
        write_run(variant, int(seed))

    def evaluate(benchmarks, descriptors, visibility):
        assert list(benchmarks) == ["synthetic"] and benchmarks["synthetic"] == "the demo benchmark"
        ((name, scores),) = [(d.name, d.regressor.scores) for d in descriptors]
        recovery = {
            "against_zero": {"ratio": scores["rmse_ratio"], "verdict": scores["verdict"]},
            "visible": {
                "against_zero": {"ratio": scores["rmse_ratio_visible"]},
                "correlation_mean": scores["correlation_visible"],
            },
        }
        return {
            "results": {name: {"synthetic": {"accuracy": scores["accuracy"]}}},
            "recovery": {name: {"synthetic": recovery}},
        }

    for variant in VARIANTS:
        for seed in (0, 1, 2):
            # One run was killed mid-fit: its last.ckpt is from a validation, not the end, and must be trained again.
            write_run(variant, seed, finished=(variant, seed) != ("no_contrastive", 2))
    monkeypatch.setattr(variants, "REPO", tmp_path)
    monkeypatch.setattr(variants.subprocess, "run", fake_fit)
    monkeypatch.setattr(ablations_cli, "load_benchmark", lambda: "the demo benchmark")
    monkeypatch.setattr(eval.descriptors, "load_regression", lambda path: (nn.Identity(), RunScores(path)))
    monkeypatch.setattr(eval.recovery, "read_visibility", lambda: "visibility")
    monkeypatch.setattr(eval.evaluate, "evaluate", evaluate)
    return trained


def test_main_trains_only_missing_runs_and_tabulates_every_variant_over_its_seeds(fake_runs, tmp_path):
    report = ablations_cli.main(["--out", str(tmp_path / "out")])
    # Only the missing run trained: the demo config, its variant's overlay, its seed and run name, W&B off.
    assert fake_runs == [
        [
            *fake_runs[0][:3],
            "fit",
            "--config",
            "experiments/demo/main.yaml",
            "--config",
            "experiments/ablations/no_contrastive.yaml",
            "--seed_everything",
            "2",
            "--run.name",
            "ablation-no_contrastive-s2",
            "--run.wandb",
            "false",
        ]
    ]
    assert fake_runs[0][1:3] == ["-m", "lightning_modules.cli"]
    text = report.read_text()
    lines = text.splitlines()
    assert lines[0] == "# Ablations at demo scale (3 seeds, mean +- std)"
    rows = [line for line in lines if line.startswith("| ") and not line.startswith("| variant")]
    assert rows == EXPECTED_ROWS
    saved = json.loads((tmp_path / "out" / "ablations.json").read_text())
    assert list(saved) == list(VARIANTS)
    for variant in VARIANTS:
        assert saved[variant] == [fake_scores(variant, seed) | {"seed": seed} for seed in (0, 1, 2)]


def test_main_over_chosen_variants_and_seeds(fake_runs, tmp_path):
    report = ablations_cli.main(
        ["--variants", "supervised", "with_domain", "--seeds", "1", "--out", str(tmp_path / "o")]
    )
    lines = report.read_text().splitlines()
    assert fake_runs == [] and lines[0] == "# Ablations at demo scale (1 seeds, mean +- std)"
    rows = [line for line in lines if line.startswith("| ") and not line.startswith("| variant")]
    assert rows == [
        "| supervised | 0.7600 +- 0.0000 | 1.4000 +- 0.0000 | 0.5000 +- 0.0000 | 0.3000 +- 0.0000 | 0 of 1 | - |",
        "| with_domain | 0.7300 +- 0.0000 | 1.1000 +- 0.0000 | 0.8000 +- 0.0000 | 0.3000 +- 0.0000 | 0 of 1 | 0.8983 |",
    ]


def test_supervised_and_full_runs_use_their_overlays(fake_runs, tmp_path):
    for variant in ("full", "supervised"):
        variants.train(variant, 7)
    overlays = [command[command.index("fit") + 1 : command.index("--seed_everything")] for command in fake_runs]
    assert overlays == [
        ["--config", "experiments/demo/main.yaml"],
        ["--config", "experiments/demo/main.yaml", "--config", "experiments/demo/supervised.yaml"],
    ]
