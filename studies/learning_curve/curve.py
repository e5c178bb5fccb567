"""The learning curve of the demo regressions (issue 13 item 3): likeness-benchmark scores against screenshots seen,
at 64 and 128 px, for the paper's objective (experiments/demo/main.yaml) and its supervised overlay
(experiments/demo/supervised.yaml, the best variant of the demo's).

One fit per (objective, size) runs `epochs` epochs of the demo's 50 batches, its StepLR step stretched in
proportion (the demo halves the rate after 4 of 6 epochs; here after 2/3 of the epochs, so the last snapshot
is as annealed as the demo's), and keeps a snapshot after every validation (after ShrinkageCalibration has
refitted R's shrinkage, so each snapshot is what a tool would load). Each size has its own demo imitator
(experiments/demo/imitator.yaml, + imitator_128.yaml at 128 px). All snapshots are scored in one pass of the
likeness benchmark (eval/likeness_bench.py, held-out recogniser).
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import torch

from lightning_modules.run_folder import finished_checkpoint, fit_command, fit_once

REPO = Path(__file__).resolve().parents[2]
OBJECTIVES = {"paper": [], "supervised": ["experiments/demo/supervised.yaml"]}
SIZES = {64: [], 128: ["experiments/demo/size128.yaml"]}
IMITATORS = {64: [], 128: ["experiments/demo/imitator_128.yaml"]}
DEMO_EPOCHS, DEMO_STEP_SIZE = 6, 4  # experiments/demo/main.yaml's schedule
SNAPSHOTS = "snapshots"  # beside version_N/checkpoints: one file per validation


def step_size(epochs: int) -> int:
    """The StepLR step for `epochs` epochs, in the demo's proportion (4 of 6)."""
    return max(1, round(epochs * DEMO_STEP_SIZE / DEMO_EPOCHS))


def run_name(objective: str, size: int) -> str:
    return f"curve-{objective}-{size}"


def fit(configs: list[str], name: str, runs: Path, extra: list[str]) -> Path:
    """A finished fit of `configs` named `name` under `runs` (trained unless one is there): its last.ckpt."""
    return fit_once([*fit_command(configs, name, runs), *extra], runs / name)


def imitator(size: int, runs: Path, extra: list[str]) -> Path:
    """The size's demo imitator run folder, trained first if it has no finished fit."""
    name = "demo-imitator" if size == 64 else f"demo-imitator-{size}"
    fit(["experiments/demo/imitator.yaml", *IMITATORS[size]], name, runs, extra)
    return runs / name


def snapshot_callback(folder: Path) -> str:
    """A ModelCheckpoint that keeps every validation's state (no monitor), for --trainer.callbacks+=."""
    init = {
        "dirpath": str(folder),
        "filename": "step{step:07d}",
        "auto_insert_metric_name": False,
        "save_top_k": -1,
        "monitor": None,
        "every_n_epochs": 1,
        "save_on_train_epoch_end": False,
    }
    return json.dumps({"class_path": "lightning.pytorch.callbacks.ModelCheckpoint", "init_args": init})


def train(
    objective: str, size: int, epochs: int, runs: Path, extra: list[str] = (), imitator_extra: list[str] = ()
) -> list[Path]:
    """Every snapshot of the (objective, size) fit, oldest first; trained (and its imitator) unless finished.
    `extra`: LightningCLI flags for the regression, `imitator_extra` for its imitator."""
    name = run_name(objective, size)
    snapshots = runs / name / SNAPSHOTS
    if finished_checkpoint(runs / name) is None:
        shutil.rmtree(snapshots, ignore_errors=True)  # an interrupted fit's snapshots belong to no finished curve
    overrides = [
        *extra,  # first: a `--trainer.callbacks=[...]` here must not drop the snapshots appended below
        "--model.init_args.imitator_checkpoint", str(imitator(size, runs, list(imitator_extra))),
        "--trainer.max_epochs", str(epochs),
        "--model.init_args.scheduler.init_args.step_size", str(step_size(epochs)),
        f"--trainer.callbacks+={snapshot_callback(snapshots)}",
    ]  # fmt: skip
    fit(["experiments/demo/main.yaml", *OBJECTIVES[objective], *SIZES[size]], name, runs, overrides)
    return sorted(snapshots.glob("step*.ckpt"))


def snapshot_step(path: Path) -> int:
    """The optimizer step a snapshot was taken at (from its name, step0000150.ckpt)."""
    match = re.fullmatch(r"step(\d+)(-v\d+)?\.ckpt", path.name)
    if match is None:
        raise ValueError(f"{path}: not a learning-curve snapshot (expected stepNNNNNNN.ckpt)")
    return int(match.group(1))


def screenshots_per_step(checkpoint: Path) -> int:
    """Screenshots in one training batch of the run (the datamodule's batch_size in the checkpoint)."""
    saved = torch.load(checkpoint, map_location="cpu", weights_only=True, mmap=True)
    return int(saved["datamodule_hyper_parameters"]["batch_size"])


def curve_rows(report: dict, snapshots: dict[str, tuple[str, int, int, int]]) -> list[dict]:
    """One row per snapshot: objective, size, step, screenshots seen, and its benchmark scores with intervals."""
    rows = []
    for name, (objective, size, step, per_step) in snapshots.items():
        scores, intervals = report["rows"][name], report["intervals"][name]
        rows.append(
            {"name": name, "objective": objective, "size": size, "step": step, "screenshots_seen": step * per_step}
            | {
                key: scores[key]
                for key in (
                    "visible_rmse_ratio",
                    "all_rmse_ratio",
                    "likeness_gap_closed",
                    "lineup_top1",
                    "verification",
                )
            }
            | {
                f"{key}_interval": intervals[key]
                for key in ("visible_rmse_ratio", "all_rmse_ratio", "likeness_gap_closed", "lineup_top1")
            }
        )
    return rows


PANELS = (
    ("visible_rmse_ratio", "RMSE / neutral face's, visible sliders (lower is better)", 1.0),
    ("likeness_gap_closed", "likeness gap closed (0 neutral, 1 truth)", 0.0),
)


def plot(rows: list[dict], references: dict[str, dict], path: Path) -> Path:
    """Two panels against screenshots seen, a line and 95% band per (objective, size); references as dashed lines."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(11, 4.2), layout="constrained")
    FigureCanvasAgg(figure)
    for axis, (key, title, neutral) in zip(figure.subplots(1, 2), PANELS):
        for objective, size in sorted({(row["objective"], row["size"]) for row in rows}):
            line = sorted(
                (r for r in rows if (r["objective"], r["size"]) == (objective, size)), key=lambda r: r["step"]
            )
            x = [r["screenshots_seen"] for r in line]
            low, high = np.array([r[f"{key}_interval"] for r in line]).T
            (drawn,) = axis.plot(x, [r[key] for r in line], marker="o", label=f"{objective}, {size} px")
            axis.fill_between(x, low, high, alpha=0.2, color=drawn.get_color())
        axis.axhline(neutral, color="grey", linewidth=1, label="neutral face")
        for name, scores in references.items():
            axis.axhline(scores[key], linestyle="--", linewidth=1, color="black", label=name)
        axis.set(title=title, xlabel="screenshots seen")
        axis.grid(alpha=0.3)
    axis.legend(fontsize=8, loc="best")
    figure.savefig(path, dpi=110)
    return path
