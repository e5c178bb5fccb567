"""make demo-ablations: the table aggregates seeds per variant, next to the paper's number."""

from pathlib import Path

import yaml

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
