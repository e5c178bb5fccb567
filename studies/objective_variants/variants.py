"""Which objective lets the demo regression recover parameters, and where do its offsets come from? As JSON.

    python -m studies.objective_variants [NAME ...] [--out studies/objective_variants/results]

Each variant is experiments/demo/main.yaml (300 steps, seed 1234) with the command-line overrides in
VARIANTS, trained through the LightningCLI into runs/variant-NAME (reused when it has a last.ckpt; no image
callbacks). Each checkpoint is then scored on three sets with known parameters:
    screenshots   the demo game set's validation rows (data/game-game-64, split.json), the target domain
    photos        the demo photo set's validation identities (data/photo-64), the training source domain
    benchmark     the demo's held-out benchmark (studies/demo/stages.py: other people, the "realistic" prior, extras)
and for each: RMSE over all 267 parameters against predicting 0 (the neutral face, the prior's mean), the mean
|offset| (mean prediction minus mean truth) over the 267, and for the visible parameters (eval/recovery.py:
VISIBLE_GREY_LEVELS) the correlation, offset and slope of prediction on truth. Needs the demo imitator
(runs/demo-imitator) and renders the sets it lacks.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch

from lightning_modules.run_folder import finished_checkpoint

REPO = Path(__file__).resolve().parents[2]
SUPERVISED = ["--model.init_args.screenshot_supervision_weight", "1.0", "--model.init_args.parameter_prior_weight", "0"]
LINEAR_DOMAIN = [
    "--model.init_args.objective.lambda_domain",
    "1.0",
    "--model.init_args.objective.mmd_kernel",
    "linear",
    "--model.init_args.objective.mmd_on_features",
    "false",
]


# The demo imitator is trained on the neutral_mix prior; the rows measured before it became the demo's went
# through the uniform-prior one, named here so they reproduce. Each variant names its imitator.
IMITATORS = {
    "runs/demo-imitator": ["experiments/demo/imitator.yaml"],
    "runs/demo-imitator-uniform": ["experiments/demo/imitator.yaml", "experiments/demo/imitator_uniform.yaml"],
}
MIX_IMITATOR, UNIFORM_IMITATOR = IMITATORS
# The demo's photo source, rendered with the benchmark's expressions, glasses and occluders (studies/demo/stages.py).
EXTRAS_SOURCE = (
    "{kind: synthetic, root: data/photo-64-extras, identities_per_batch: 8, photos_per_identity: 2, "
    "generate: {count: 1200, size: 64, seed: 1, renders_per_identity: 4, "
    "extras: {expressions: 0.5, glasses: 0.3, occluders: 0.2}}}"
)


def without(*terms: str) -> list[str]:
    return [arg for term in terms for arg in (f"--model.init_args.objective.lambda_{term}", "0")]


def as_measured(overrides: list[str]) -> list[str]:
    """The rows here were measured on the demo's first screenshot set (2,000); train() also drops the callbacks,
    so they have no shrinkage calibration either."""
    return [
        "--data.init_args.target_root",
        "data/game-game-64",
        "--data.init_args.generate",
        "{count: 2000, size: 64, seed: 0}",
        *overrides,
    ]


def uniform(overrides: list[str]) -> list[str]:
    return as_measured(overrides + ["--model.init_args.imitator_checkpoint", UNIFORM_IMITATOR])


VARIANTS: dict[str, tuple[str, list[str]]] = {
    "demo": ("experiments/demo/main.yaml: the paper's terms but L_domain, prior 0.2", uniform([])),
    "sup": ("+ supervision, no prior", uniform(SUPERVISED)),
    "sup_only": ("supervision alone", uniform(SUPERVISED + without("restored", "contrastive", "consistency"))),
    "sup_restored": ("supervision + L_restored", uniform(SUPERVISED + without("contrastive", "consistency"))),
    "sup_linear_domain_all": ("+ supervision, no prior, linear L_domain", uniform(SUPERVISED + LINEAR_DOMAIN)),
    "sup_restored_vs_G": (
        "+ supervision, L_restored against G(p_true), linear L_domain",
        uniform(SUPERVISED + LINEAR_DOMAIN + ["--model.init_args.restore_against", "imitator"]),
    ),
    "sup_linear_domain": (
        "supervision + linear L_domain",
        uniform(SUPERVISED + LINEAR_DOMAIN + without("restored", "contrastive", "consistency")),
    ),
    "sup_consistency": ("supervision + L_consistency", uniform(SUPERVISED + without("restored", "contrastive"))),
    "sup_linear_domain_contrastive": (
        "supervision + linear L_domain + L_contrastive",
        uniform(SUPERVISED + LINEAR_DOMAIN + without("restored", "consistency")),
    ),
    "supervised_yaml": (
        "experiments/demo/supervised.yaml without L_restored (the above + prior 1)",
        uniform(["--config", "experiments/demo/supervised.yaml", *without("restored")]),
    ),
    "demo_mix_imitator": (
        "demo through an imitator trained on the neutral_mix prior",
        as_measured(["--model.init_args.imitator_checkpoint", MIX_IMITATOR]),
    ),
    "supervised_yaml_restored_mix": (
        "supervised.yaml with L_restored and L_consistency back, through the neutral_mix imitator",
        as_measured(
            [
                "--config",
                "experiments/demo/supervised.yaml",
                "--model.init_args.objective.lambda_restored",
                "1.0",
                "--model.init_args.objective.lambda_consistency",
                "0.02",
                "--model.init_args.imitator_checkpoint",
                MIX_IMITATOR,
            ]
        ),
    ),
    "supervised_yaml_restored01_mix": (
        "experiments/demo/supervised.yaml: L_restored at 0.1 through the neutral_mix imitator",
        as_measured(
            [
                "--config",
                "experiments/demo/supervised.yaml",
                "--model.init_args.objective.lambda_restored",
                "0.1",
                "--model.init_args.imitator_checkpoint",
                MIX_IMITATOR,
            ]
        ),
    ),
    "supervised_yaml_extras": (
        "supervised.yaml without L_restored, source photos with the benchmark's extras (other people)",
        uniform(
            [
                "--config",
                "experiments/demo/supervised.yaml",
                *without("restored"),
                "--data.init_args.source",
                EXTRAS_SOURCE,
            ]
        ),
    ),
}


def fit(arguments: list[str]) -> None:
    command = [sys.executable, "-m", "lightning_modules.cli", "fit", *arguments, "--run.wandb", "false"]
    subprocess.run(command, check=True, cwd=REPO)


def train(name: str, overrides: list[str]) -> Path:
    """The variant's last.ckpt, trained first if its run (or the imitator it names) has no finished fit."""
    for imitator, configs in IMITATORS.items():
        if imitator in overrides and finished_checkpoint(REPO / imitator) is None:
            fit([arg for config in configs for arg in ("--config", config)])
    run = REPO / "runs" / f"variant-{name}"
    checkpoint = finished_checkpoint(run)
    if checkpoint is None:
        fit(
            [
                "--config",
                "experiments/demo/main.yaml",
                *overrides,
                "--run.name",
                run.name,
                "--trainer.callbacks",
                "null",
                "--trainer.enable_progress_bar",
                "false",
            ]
        )
        checkpoint = finished_checkpoint(run)
    return checkpoint


def summary(predicted: np.ndarray, truth: np.ndarray, visible: np.ndarray, names: list[str]) -> dict:
    """RMSE against the neutral face, mean |offset|, and per visible parameter correlation, offset and slope."""
    from eval.recovery import pearson

    error = predicted - truth
    correlation = pearson(predicted, truth)
    per_parameter = {}
    for i in visible:
        spread = truth[:, i].var()
        slope = float(np.cov(truth[:, i], predicted[:, i], bias=True)[0, 1] / spread) if spread > 0 else 0.0
        per_parameter[names[i]] = {
            "correlation": float(correlation[i]),
            "offset": float(error[:, i].mean()),
            "slope": slope,
        }
    return {
        "count": len(truth),
        "rmse": float(np.sqrt((error**2).mean())),
        "rmse_predicting_zero": float(np.sqrt((truth**2).mean())),
        "mean_abs_offset": float(np.abs(error.mean(0)).mean()),
        "visible": per_parameter,
    }


def table(results: list[dict]) -> str:
    """Markdown: per variant, RMSE over the neutral face's per set, and skin tone / hair colour offset and r."""
    sets = ("screenshots", "photos", "benchmark")
    lines = [
        "| variant | RMSE / neutral face: " + " / ".join(sets) + " | mean abs offset (benchmark) | "
        "skin tone offset, r: screenshots / benchmark | hair colour offset, r: screenshots / benchmark |",
        "|---|---|---|---|---|",
    ]
    for r in results:
        ratios = " / ".join(f"{r[s]['rmse'] / r[s]['rmse_predicting_zero']:.4f}" for s in sets)
        cells = []
        for name in ("skin_tone", "hair_color"):
            read = [r[s]["visible"][name] for s in ("screenshots", "benchmark")]
            cells.append(" / ".join(f"{x['offset']:+.2f}, {x['correlation']:.2f}" for x in read))
        offset = r["benchmark"]["mean_abs_offset"]
        lines.append(f"| {r['variant']} | {ratios} | {offset:.3f} | {cells[0]} | {cells[1]} |")
    return "\n".join(lines) + "\n"


def held_out_sets() -> dict[str, tuple[torch.Tensor, np.ndarray]]:
    """name -> (images (N, 3, 64, 64) in [0, 1], true parameters (N, 267))."""
    from datamodules.screenshots import load_image, open_screenshot_set
    from eval.evaluate import benchmark_images
    from studies.demo.stages import load_benchmark

    def read(root: str, rows) -> tuple[torch.Tensor, np.ndarray]:
        screenshots = open_screenshot_set(REPO / root)
        images = np.stack([load_image(screenshots.files[i], 64) for i in rows])
        return torch.from_numpy(images.transpose(0, 3, 1, 2).copy()).float() / 255, screenshots.parameters[rows]

    game_split = json.loads((REPO / "data/game-game-64/split.json").read_text())
    photo_split = json.loads((REPO / "data/photo-64/identity_split.json").read_text())
    photo_people = np.load(REPO / "data/photo-64/identities.npy")
    bench = load_benchmark()
    return {
        "screenshots": read("data/game-game-64", game_split["val"]),
        "photos": read("data/photo-64", np.flatnonzero(np.isin(photo_people, photo_split["val"]))),
        "benchmark": (benchmark_images(bench, range(bench.num_images)), bench.parameters),
    }
