"""Imitator pre-training (paper eq. 1): fit G(p) to the engine's screenshot of p, pixel loss."""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from lightning.pytorch import LightningModule
from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable
from torch import nn
from torchmetrics import MeanMetric
from torchmetrics.image import PeakSignalNoiseRatio, StructuralSimilarityIndexMeasure

from lightning_modules.checkpoint_trust import CheckedLoading
from models.checkpoints import build_network, network_spec

# Eq. 1 pixel loss. "l2" is the mean squared error (the usual reading of ||.||_2 in such losses;
# it does not grow with the image size), "l1" the mean absolute error.
PIXEL_LOSSES = {"l2": F.mse_loss, "l1": F.l1_loss}


class ImitatorModule(CheckedLoading, LightningModule):
    """Trains an injected imitator net on (parameters, screenshot) batches; PSNR/SSIM on held-out rows."""

    def __init__(
        self,
        net: nn.Module,
        loss: Literal["l2", "l1"] = "l2",
        optimizer: OptimizerCallable = torch.optim.Adam,
        scheduler: LRSchedulerCallable | None = None,
    ) -> None:
        super().__init__()
        if loss not in PIXEL_LOSSES:
            raise ValueError(f"loss must be one of {sorted(PIXEL_LOSSES)}, got {loss!r}")
        if isinstance(net, dict):  # {"class_path", "init_args"}: load_from_checkpoint of a run built in Python
            net = build_network(net, "hyper_parameters['net']")
        # The net is stored as class path + init args (never pickled), so a checkpoint rebuilds it alone;
        # the optimizer and scheduler live in the run's config.yaml.
        self.save_hyperparameters(ignore=["net", "optimizer", "scheduler"])
        self.save_hyperparameters({"net": network_spec(net)})
        self.net = net
        self.optimizer = optimizer
        self.scheduler = scheduler
        self.train_loss = MeanMetric()
        self.val_loss = MeanMetric()
        self.val_psnr = PeakSignalNoiseRatio(data_range=1.0)
        self.val_ssim = StructuralSimilarityIndexMeasure(data_range=1.0)

    def forward(self, parameters: torch.Tensor) -> torch.Tensor:
        """Render parameters (B, 267) to images (B, 3, S, S) in [0, 1]."""
        return self.net(parameters)

    def setup(self, stage: str) -> None:
        """Fail early when the data's image size is not the size the net renders."""
        datamodule = getattr(self.trainer, "datamodule", None)
        data_size = getattr(datamodule, "image_size", None)
        net_size = getattr(self.net, "image_size", None)
        if data_size is not None and net_size is not None and data_size != net_size:
            raise ValueError(
                f"the data gives {data_size} px images but the imitator renders {net_size} px: "
                f"set data.init_args.image_size and model.init_args.net.init_args.image_size alike"
            )

    def model_step(self, batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
        """The step shared by train and val: render the batch's parameters, compare to the screenshots."""
        rendered = self(batch["parameters"])
        loss = PIXEL_LOSSES[self.hparams.loss](rendered.float(), batch["image"])
        return loss, rendered

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        """One optimisation step on eq. 1."""
        loss, _ = self.model_step(batch)
        self.train_loss(loss)
        self.log("train/loss", self.train_loss, on_step=True, on_epoch=True, prog_bar=True)
        return loss

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        """Loss, PSNR and SSIM against the engine on validation rows."""
        loss, rendered = self.model_step(batch)
        rendered = rendered.float().clamp(0, 1)
        self.val_loss(loss, weight=rendered.shape[0])
        self.val_psnr(rendered, batch["image"])
        self.val_ssim(rendered, batch["image"])
        self.log("val/loss", self.val_loss, prog_bar=True)
        self.log("val/psnr", self.val_psnr, prog_bar=True)
        self.log("val/ssim", self.val_ssim)

    def sample_images(self, batch: dict) -> dict[str, torch.Tensor]:
        """Columns for an image grid: the engine's screenshot beside the imitator's output."""
        return {"engine": batch["image"], "imitator": self(batch["parameters"]).float()}

    def configure_optimizers(self):
        """The injected optimizer over the net, and the injected scheduler stepped per epoch."""
        optimizer = self.optimizer(self.net.parameters())
        if self.scheduler is None:
            return optimizer
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": self.scheduler(optimizer), "interval": "epoch"}}
