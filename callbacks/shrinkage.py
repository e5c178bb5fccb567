"""Per-parameter shrinkage of the regressed parameters, fitted on held-out screenshots (not in the paper).

For a parameter a picture barely shows, a regressor trained for minutes answers noise around the prior's mean;
over many such parameters that noise costs more than the few visible ones gain (bench/README.md, "What the demo
regression can recover"). After every validation epoch this callback regresses the datamodule's validation
SCREENSHOTS (their true parameters are free; photos are never used) with R's raw output and sets, per parameter,
the least-squares factor of prediction on truth, clipped to [0, 1]:

    shrinkage_k = clip(sum_i p_ik t_ik / sum_i p_ik^2, 0, 1)

i.e. the best linear shrinkage towards 0, the game prior's mean (the neutral face). It is written into R's
`shrinkage` buffer, which R applies in eval mode only (models/regressor.py), so training is unchanged and every
checkpoint saved after the epoch, and every tool that loads one, regresses calibrated parameters. Written here
rather than taken from a library: it is one closed-form ratio, and it must live in R's buffer to travel with it.
"""

from __future__ import annotations

import torch
from lightning.pytorch import Callback, LightningModule, Trainer
from lightning.pytorch.utilities import rank_zero_warn
from torch.utils.data import DataLoader

from models.modes import evaluating


def shrinkage_factors(products: torch.Tensor, squares: torch.Tensor) -> torch.Tensor:
    """Per parameter clip(sum p t / sum p^2, 0, 1), from those two sums over the calibration set."""
    return (products / squares.clamp_min(1e-12)).clamp(0, 1)


class ShrinkageCalibration(Callback):
    """Fit R's per-parameter shrinkage on the validation screenshots after each validation epoch."""

    def __init__(self, batch_size: int = 64, min_screenshots: int = 50) -> None:
        self.batch_size = batch_size
        self.min_screenshots = min_screenshots

    @torch.no_grad()
    def on_validation_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if trainer.sanity_checking:
            return
        datamodule = trainer.datamodule
        dataset = getattr(datamodule, "val_dataset", None)
        if dataset is None:
            raise ValueError(
                "ShrinkageCalibration needs the datamodule's val_dataset of screenshots with their "
                "true parameters (CrossDomainDataModule)"
            )
        if len(dataset) < self.min_screenshots:
            rank_zero_warn(
                f"ShrinkageCalibration: only {len(dataset)} validation screenshots; the factors of "
                f"{pl_module.regressor.num_parameters} parameters will be noisy"
            )
        # Each rank takes its share of the rows; the sums are added over ranks below.
        rows = range(trainer.global_rank, len(dataset), trainer.world_size)
        loader = DataLoader(torch.utils.data.Subset(dataset, rows), batch_size=self.batch_size)
        regressor = pl_module.regressor
        products = torch.zeros(regressor.num_parameters, dtype=torch.float64, device=pl_module.device)
        squares = torch.zeros_like(products)
        with evaluating(pl_module):  # the codebooks' EMA must not learn from this pass
            for batch in loader:
                batch = datamodule.on_after_batch_transfer(
                    {key: value.to(pl_module.device) for key, value in batch.items()}, 0
                )
                raw = regressor(pl_module.encoder(batch["image"]).features, shrink=False).parameters
                raw, truth = raw.double(), batch["parameters"].double()
                products += (raw * truth).sum(0)
                squares += raw.pow(2).sum(0)
        products = trainer.strategy.reduce(products, reduce_op="sum")
        squares = trainer.strategy.reduce(squares, reduce_op="sum")
        factor = shrinkage_factors(products, squares)
        regressor.shrinkage.copy_(factor.to(regressor.shrinkage))
        pl_module.log_dict(
            {
                "calibration/mean_shrinkage": factor.mean().float(),
                "calibration/parameters_kept_over_half": (factor > 0.5).sum().float(),
            }
        )
