"""How much of the game's parameters can a network read from its screenshots, and do the demo's networks limit it?

Each network in NETWORKS is fitted through the LightningCLI (configs/base.yaml plus its overlays:
lightning_modules.reader.ParameterReaderModule, MSE to the screenshots' true parameters, no photos, no imitator),
into RUNS/screenshot-readability-NET/version_N. Its validations (every --eval-every steps) give the rows: the RMSE
on the set's held-out rows over the RMSE of predicting 0 (the neutral face), what "closer than the constant
predictor" can reach on clean screenshots before any domain gap. The last checkpoint is then scored again on the
held-out rows, and with --benchmark on the demo's held-out photo-style benchmark (studies/demo/stages.py) with
eval.recovery's bootstrap interval over people: how much of what was read on screenshots survives the photo style
when nothing aligns the two domains.
"""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch
import yaml

REPO = Path(__file__).resolve().parents[2]
CONFIGS = REPO / "studies/screenshot_readability/configs"
# Each network: its overlays on configs/base.yaml, in order, and its row label.
NETWORKS = {
    "resnet18": (("resnet18",), "ResNet-18 from scratch (timm)"),
    "demo": (("demo",), "demo E + R"),
    "demo_unquantised": (("demo", "demo_unquantised"), "demo E + R, codebooks bypassed"),
}


def config_files(name: str) -> list[Path]:
    """The LightningCLI configs of network `name`, composed left to right."""
    return [CONFIGS / "base.yaml", *(CONFIGS / f"{overlay}.yaml" for overlay in NETWORKS[name][0])]


def run_name(name: str) -> str:
    """The run folder's name (run.name) of network `name`."""
    return f"screenshot-readability-{name}"


def fit(name: str, runs: Path, overrides: list[str]) -> Path:
    """Fit network `name` through `python -m lightning_modules.cli fit`; the new run's last checkpoint."""
    from models.checkpoints import find_checkpoint

    configs = [arg for path in config_files(name) for arg in ("--config", str(path))]
    command = [sys.executable, "-m", "lightning_modules.cli", "fit", *configs, *overrides]
    subprocess.run([*command, "--run.name", run_name(name), "--run.root", str(runs)], check=True, cwd=REPO)
    return find_checkpoint(runs / run_name(name))  # the newest version: this one


def logged_rows(run_dir: Path) -> list[dict]:
    """Each validation's step, val/loss and val/rmse_ratio from the run's metrics.csv."""
    with open(run_dir / "metrics.csv", newline="") as handle:
        logged = [row for row in csv.DictReader(handle) if row.get("val/rmse_ratio")]
    return [
        {
            "step": int(row["step"]) + 1,  # Lightning logs a validation at the index of the step it follows
            "val_loss": round(float(row["val/loss"]), 4),
            "held_out_rmse_over_neutral": round(float(row["val/rmse_ratio"]), 4),
        }
        for row in logged
    ]


def load_reader(checkpoint: Path):
    """The ParameterReaderModule of a checkpoint, in eval mode."""
    from lightning_modules.reader import ParameterReaderModule

    return ParameterReaderModule.load_from_checkpoint(checkpoint, map_location="cpu").eval()


def trainable_parameters(checkpoint: Path) -> int:
    """How many parameters of the checkpoint's reader were trained."""
    return sum(p.numel() for p in load_reader(checkpoint).net.parameters() if p.requires_grad)


def score_held_out(checkpoint: Path) -> dict:
    """val/loss and val/rmse_ratio of a checkpoint on the held-out rows of the set its run trained on."""
    from lightning.pytorch import Trainer

    from datamodules import CrossDomainDataModule

    data = yaml.safe_load((checkpoint.parent.parent / "config.yaml").read_text())["data"]["init_args"]
    datamodule = CrossDomainDataModule(**{**data, "num_workers": 0, "persistent_workers": False})
    trainer = Trainer(accelerator="cpu", logger=False, enable_checkpointing=False, enable_progress_bar=False)
    (scores,) = trainer.validate(load_reader(checkpoint), datamodule=datamodule, verbose=False)
    return {key.removeprefix("val/"): round(float(value), 4) for key, value in scores.items()}


@torch.no_grad()
def predict(reader, images: torch.Tensor, batch: int = 256) -> np.ndarray:
    """Parameters (N, 267) of images (N, 3, S, S) float in [0, 1]."""
    return torch.cat([reader(images[i : i + batch]).parameters for i in range(0, len(images), batch)]).numpy()


def benchmark_score(checkpoint: Path, bench=None) -> dict:
    """RMSE over the neutral face's on the demo benchmark (or `bench`), with its bootstrap interval over people."""
    from eval.evaluate import benchmark_images
    from eval.recovery import ratio_interval

    if bench is None:
        from studies.demo.stages import load_benchmark

        bench = load_benchmark()
    predicted = predict(load_reader(checkpoint), benchmark_images(bench, range(bench.num_images)))
    truth = bench.parameters.astype(np.float64)
    return ratio_interval((predicted - truth) ** 2, truth**2, bench.identities)


def table(results: list[dict]) -> str:
    """The README's table: one row per network, the held-out ratio at each validation, the benchmark's."""
    steps = " / ".join(str(row["step"]) for row in results[0]["rows"])
    lines = [
        f"| network (trainable parameters) | held-out screenshots, step {steps} | benchmark photos (95% interval "
        "over people) |",
        "|---|---|---|",
    ]
    for result in results:
        label = f"{NETWORKS[result['network']][1]} ({result['trainable_parameters'] / 1e6:.1f} M)"
        ratios = " / ".join(f"{row['held_out_rmse_over_neutral']:.4f}" for row in result["rows"])
        bench = result.get("benchmark")
        photos = f"{bench['ratio']:.3f} ({bench['interval'][0]:.3f}-{bench['interval'][1]:.3f})" if bench else "-"
        lines.append(f"| {label} | {ratios} | {photos} |")
    return "\n".join(lines) + "\n"
