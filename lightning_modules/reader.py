"""Reads the game parameters from a picture, supervised by the screenshots' true parameters (no imitator, no photos).

Batches: datamodules.CrossDomainDataModule without `source`, {"image": (B, 3, S, S) [0, 1], "parameters": (B, 267)}.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from lightning.pytorch import LightningModule
from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable
from torch import nn
from torchmetrics import MeanMetric, MeanSquaredError

from lightning_modules.checkpoint_trust import CheckedLoading
from models.checkpoints import build_network, network_spec
from models.readers import ReaderOutput


class ParameterReaderModule(CheckedLoading, LightningModule):
    """Trains an injected reader (images -> parameters, auxiliary loss; models/readers.py) on the MSE to the true
    parameters; logs train/loss, val/loss and val/rmse_ratio, the held-out RMSE over that of predicting 0 (the
    neutral face).

    The loss is the MSE of parameters / `parameter_range` (each in [-1, 1]) plus `auxiliary_weight` times the
    reader's own loss (a codebook's commitment). Only parameters with requires_grad are optimised, so a reader may
    hold a frozen pretrained part (it keeps that part in eval mode itself).
    """

    def __init__(
        self,
        net: nn.Module,
        auxiliary_weight: float = 0.25,
        parameter_range: float = 2.5,
        optimizer: OptimizerCallable = torch.optim.Adam,
        scheduler: LRSchedulerCallable | None = None,
    ) -> None:
        super().__init__()
        net = build_network(net) if isinstance(net, dict) else net  # a spec: load_from_checkpoint
        # The net as class path + init args (models.checkpoints.load_network(path, "net") rebuilds it alone);
        # the optimizer and scheduler live in the run's config.yaml.
        self.save_hyperparameters(ignore=["net", "optimizer", "scheduler"])
        self.save_hyperparameters({"net": network_spec(net)})
        self.net, self.optimizer, self.scheduler = net, optimizer, scheduler
        self.train_loss, self.val_loss = MeanMetric(), MeanMetric()
        self.val_mse = MeanSquaredError()  # of the predicted parameters
        self.val_mse_neutral = MeanSquaredError()  # of predicting 0, the neutral face

    def forward(self, images: torch.Tensor) -> ReaderOutput:
        """Images (B, 3, S, S) in [0, 1] -> ReaderOutput(parameters (B, 267), auxiliary loss ())."""
        output = self.net(images)
        if isinstance(output, torch.Tensor):  # a reader with no loss of its own may return the parameters alone
            return ReaderOutput(output, output.new_zeros(()))
        return ReaderOutput(*output)

    def model_step(self, batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
        """The step shared by train and val: (loss, predicted parameters (B, 267))."""
        predicted, auxiliary = self(batch["image"])
        scale = self.hparams.parameter_range
        loss = F.mse_loss(predicted.float() / scale, batch["parameters"] / scale)
        return loss + self.hparams.auxiliary_weight * auxiliary, predicted

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        """One optimisation step on the supervised loss."""
        loss, _ = self.model_step(batch)
        self.train_loss(loss)
        self.log("train/loss", self.train_loss, on_step=True, on_epoch=True, prog_bar=True)
        return loss

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        """Loss and squared errors (the prediction's and the neutral face's) on held-out rows."""
        loss, predicted = self.model_step(batch)
        truth = batch["parameters"].flatten()
        self.val_loss(loss, weight=predicted.shape[0])
        self.val_mse(predicted.float().flatten(), truth)  # flatten: a reader's output may be a strided view
        self.val_mse_neutral(torch.zeros_like(truth), truth)
        self.log("val/loss", self.val_loss, prog_bar=True)

    def on_validation_epoch_end(self) -> None:
        """val/rmse_ratio over all held-out rows and parameters: below 1 is closer than the neutral face."""
        ratio = (self.val_mse.compute() / self.val_mse_neutral.compute()).sqrt()
        self.log("val/rmse_ratio", ratio, prog_bar=True)
        self.val_mse.reset()
        self.val_mse_neutral.reset()

    def configure_optimizers(self):
        """The injected optimizer over the trainable parameters, and the injected scheduler stepped per epoch."""
        optimizer = self.optimizer([p for p in self.net.parameters() if p.requires_grad])
        if self.scheduler is None:
            return optimizer
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": self.scheduler(optimizer), "interval": "epoch"}}
