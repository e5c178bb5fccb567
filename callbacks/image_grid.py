"""An image grid of fixed validation samples after each validation: PNG in the run folder, and to loggers.

The module says what to show through `sample_images(batch) -> {column name: (B, 3, S, S) in [0, 1]}`
(the imitator: engine screenshot | imitator output); the DataModule gives the fixed batch through
`preview_batch(num_samples)`. One row per sample, one column per entry.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from lightning.fabric.utilities import move_data_to_device
from lightning.pytorch import Callback, LightningModule, Trainer
from lightning.pytorch.utilities import rank_zero_only, rank_zero_warn
from PIL import Image

from models.modes import evaluating


def image_grid(columns: dict[str, torch.Tensor]) -> np.ndarray:
    """Lay out (B, 3, S, S) tensors in [0, 1] as a uint8 (B*S, C*S, 3) grid: rows samples, columns entries."""
    rows = torch.cat([torch.cat(list(images.float().clamp(0, 1).cpu()), dim=1) for images in columns.values()], dim=2)
    return (rows.permute(1, 2, 0).numpy() * 255 + 0.5).astype(np.uint8)


class ImageGridCallback(Callback):
    """Saves `images/step{global_step:07d}.png` in the run folder and logs it as `{key}` where loggers take images."""

    def __init__(self, num_samples: int = 8, every_n_epochs: int = 1, key: str = "val/samples") -> None:
        self.num_samples = num_samples
        self.every_n_epochs = every_n_epochs
        self.key = key
        self.batch: dict | None = None
        self.folder: Path | None = None

    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        """Fix the samples and the folder (on every rank: trainer.log_dir is a collective call)."""
        if stage != "fit":
            return
        self.folder = Path(trainer.log_dir or trainer.default_root_dir) / "images"
        preview_batch = getattr(trainer.datamodule, "preview_batch", None)
        if preview_batch is None or not hasattr(pl_module, "sample_images"):
            rank_zero_warn("ImageGridCallback needs datamodule.preview_batch and module.sample_images; no grids")
            return
        self.batch = preview_batch(self.num_samples)

    def on_validation_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Render the fixed samples with the current weights (skipped during the sanity check)."""
        if trainer.sanity_checking or self.batch is None or trainer.current_epoch % self.every_n_epochs:
            return
        self._save_and_log(trainer, pl_module)

    @rank_zero_only
    def _save_and_log(self, trainer: Trainer, pl_module: LightningModule) -> None:
        batch = move_data_to_device(self.batch, pl_module.device)  # nested {"target", "source"} too
        with evaluating(pl_module), torch.no_grad():
            columns = pl_module.sample_images(batch)
        grid = image_grid(columns)
        self.folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(grid).save(self.folder / f"step{trainer.global_step:07d}.png")
        caption = " | ".join(columns)
        for logger in trainer.loggers:
            if hasattr(logger, "log_image"):  # WandbLogger and others with an image API
                logger.log_image(key=self.key, images=[grid], caption=[caption], step=trainer.global_step)
            elif hasattr(getattr(logger, "experiment", None), "add_image"):  # TensorBoard
                logger.experiment.add_image(self.key, grid, trainer.global_step, dataformats="HWC")
