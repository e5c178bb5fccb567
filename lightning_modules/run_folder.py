"""One folder per training run, runs/<name>/<version>/, holding its config, checkpoints, metrics and logs.

Also builds what writes into it: a CSVLogger (always), a WandbLogger (offline by default, optional),
the checkpoint callback (best by the monitored metric + last) and a learning-rate monitor.
See docs/contracts.md section 6.
"""

from __future__ import annotations

import csv
import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from lightning.pytorch.callbacks import Callback, LearningRateMonitor, ModelCheckpoint
from lightning.pytorch.loggers import CSVLogger, Logger, WandbLogger
from lightning.pytorch.loggers.csv_logs import ExperimentWriter
from lightning.pytorch.loggers.logger import rank_zero_experiment

from models.checkpoints import FIT_COMPLETE

REPO = Path(__file__).resolve().parents[1]  # where the configs' relative paths start
# Rank 0 records the folder it chose here; the DDP processes it launches inherit it.
RUN_DIR_ENV = "LIKENESS_RUN_DIR"


@dataclass
class RunConfig:
    """Where a run writes and how it logs (the `run:` section of an experiment YAML).

    Args:
        name: runs/<name>/ groups the versions of one experiment.
        version: the folder inside it; None = the next version_N, or the latest one when resuming.
        root: the folder that holds all runs.
        wandb: also log to Weights & Biases (the CSV logger is always on).
        wandb_offline: write W&B runs to disk only; upload later with `wandb sync <run>/wandb/offline-run-*`.
        wandb_project: the W&B project.
        monitor: the metric that picks the best checkpoint.
        monitor_mode: "min" or "max" for `monitor`.
    """

    name: str = "default"
    version: str | None = None
    root: str = "runs"
    wandb: bool = True
    wandb_offline: bool = True
    wandb_project: str = "likeness"
    monitor: str = "val/loss"
    monitor_mode: str = "min"


def _launched_child() -> bool:
    """True in a process that a launcher started for a non-zero local rank (or any node but 0)."""
    return int(os.environ.get("LOCAL_RANK", 0)) > 0 or int(os.environ.get("NODE_RANK", 0)) > 0


def resolve_run_dir(run: RunConfig, ckpt_path: str | None = None) -> Path:
    """The run's folder: run.version if given; on resume the checkpoint's run (or, for "last", the
    latest version); otherwise the next version_N."""
    if _launched_child():
        if os.environ.get(RUN_DIR_ENV):
            return Path(os.environ[RUN_DIR_ENV])
        if run.version is None:
            raise ValueError("processes started by torchrun/SLURM cannot agree on a new run folder: pass --run.version")
    base = Path(run.root) / run.name
    resuming = ckpt_path is not None
    if run.version is not None:
        run_dir = base / run.version
    elif resuming and Path(ckpt_path).parent.name == "checkpoints":  # a file of an earlier run: continue it
        run_dir = Path(ckpt_path).parent.parent
    else:
        numbers = sorted(
            int(m.group(1)) for p in base.glob("version_*") if (m := re.fullmatch(r"version_(\d+)", p.name))
        )
        if resuming and numbers:
            run_dir = base / f"version_{numbers[-1]}"
        else:
            run_dir = base / f"version_{numbers[-1] + 1 if numbers else 0}"
    if not resuming and (run_dir / "checkpoints").exists():
        raise FileExistsError(
            f"{run_dir} already holds a run: resume it with --ckpt_path last, or pick another version"
        )
    run_dir.mkdir(parents=True, exist_ok=True)  # claims the version before another run can
    os.environ[RUN_DIR_ENV] = str(run_dir)
    return run_dir


class _AppendingWriter(ExperimentWriter):
    def _check_log_dir_exists(self) -> None:
        # Lightning's writer deletes an existing metrics.csv; a resumed run continues it instead.
        if self._fs.isfile(self.metrics_file_path):
            with self._fs.open(self.metrics_file_path, "r", newline="") as handle:
                self.metrics_keys = next(csv.reader(handle), [])


class RunCSVLogger(CSVLogger):
    """CSVLogger that appends to the run's metrics.csv when the run is resumed."""

    @property
    @rank_zero_experiment
    def experiment(self) -> ExperimentWriter:
        """The writer, created on first use."""
        if self._experiment is None:
            self._fs.makedirs(self.root_dir, exist_ok=True)
            self._experiment = _AppendingWriter(log_dir=self.log_dir)
        return self._experiment


def make_loggers(run: RunConfig, run_dir: Path) -> list[Logger]:
    """CSV metrics in run_dir/metrics.csv, plus W&B under run_dir/wandb/ when enabled."""
    loggers: list[Logger] = [
        RunCSVLogger(save_dir=run_dir.parent.parent, name=run_dir.parent.name, version=run_dir.name)
    ]
    if run.wandb:
        loggers.append(
            WandbLogger(
                project=run.wandb_project,
                name=f"{run.name}/{run_dir.name}",
                save_dir=str(run_dir),
                offline=run.wandb_offline,
                id=_wandb_id(run_dir),  # the same W&B run continues on resume
                resume="allow",
            )
        )
    return loggers


def _wandb_id(run_dir: Path) -> str:
    """A W&B run id kept in the run folder, made once."""
    path = run_dir / "wandb_id.txt"
    if not path.is_file():
        path.write_text(os.urandom(6).hex())
    return path.read_text().strip()


class LastCheckpoint(ModelCheckpoint):
    """checkpoints/last.ckpt: the state after every validation and at the end of fit, whatever `monitor` says.

    Lightning's own `save_last=True` (2.6) rewrites last.ckpt only when a top-k checkpoint was saved
    in the same step, so with `save_top_k=1` it froze at the best step; `--ckpt_path last` then resumed
    from there and repeated the epochs after it (docs/contracts.md section 6).
    """

    FILENAME = "last"
    # Beside last.ckpt once fit has ended (max_steps, max_epochs, max_time, early stopping): an interrupted or
    # killed fit also leaves a last.ckpt, from its latest validation, but no marker.
    FIT_COMPLETE = FIT_COMPLETE

    def __init__(self, dirpath: Path | str) -> None:
        super().__init__(
            dirpath=dirpath, filename=self.FILENAME, monitor=None, save_top_k=1, enable_version_counter=False
        )

    def on_train_start(self, trainer, pl_module) -> None:
        if trainer.is_global_zero:  # a fit resumed into this folder is not complete until it ends again
            (Path(self.dirpath) / self.FIT_COMPLETE).unlink(missing_ok=True)

    def on_train_end(self, trainer, pl_module) -> None:
        """Also keep the final state when fit stops between validations (max_steps mid-epoch), then mark it."""
        if trainer.global_step != self._last_global_step_saved:
            self._save_checkpoint(trainer, self.format_checkpoint_name({}, self.FILENAME))
        if trainer.is_global_zero:
            marker = {"global_step": trainer.global_step, "epoch": trainer.current_epoch, "checkpoint": "last.ckpt"}
            (Path(self.dirpath) / self.FIT_COMPLETE).write_text(json.dumps(marker) + "\n")


def finished_checkpoint(run: Path) -> Path | None:
    """The newest version_N/checkpoints/last.ckpt of a run folder whose fit ended (LastCheckpoint.FIT_COMPLETE
    beside it); None if there is none. A study reuses only these: a fit killed mid-run is trained again."""
    found = [
        path
        for path in Path(run).glob("version_*/checkpoints/last.ckpt")
        if (path.parent / LastCheckpoint.FIT_COMPLETE).is_file()
    ]
    return max(found, key=lambda path: path.stat().st_mtime, default=None)


def fit_command(configs: list[str], name: str, runs: Path) -> list[str]:
    """The LightningCLI fit of `configs` (later ones overlay earlier ones) as run `name` under `runs`, offline."""
    flags = [flag for config in configs for flag in ("--config", config)]
    run = ["--run.name", name, "--run.root", str(runs), "--run.wandb", "false"]
    return [sys.executable, "-m", "lightning_modules.cli", "fit", *flags, *run]


def fit_once(command: list[str], run: Path) -> Path:
    """The run folder's finished last.ckpt, running the fit `command` from the repository root first unless
    there is one (finished_checkpoint: a fit killed mid-run is trained again)."""
    if finished_checkpoint(run) is None:
        subprocess.run(command, check=True, cwd=REPO)
    return finished_checkpoint(run)


def make_callbacks(run: RunConfig, run_dir: Path, with_loggers: bool = True) -> list[Callback]:
    """Checkpoints in run_dir/checkpoints (best by `monitor`, and last.ckpt); the learning rate per epoch."""
    callbacks: list[Callback] = [
        ModelCheckpoint(
            dirpath=run_dir / "checkpoints",
            filename="best-epoch{epoch:03d}-step{step:07d}",
            auto_insert_metric_name=False,
            monitor=run.monitor,
            mode=run.monitor_mode,
            save_top_k=1,
        ),
        LastCheckpoint(run_dir / "checkpoints"),
    ]
    if with_loggers:
        callbacks.append(LearningRateMonitor(logging_interval="epoch"))
    return callbacks
