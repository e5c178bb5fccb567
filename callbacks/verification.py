"""Face verification during training: the module's regressed parameters on a small benchmark, for W&B sweeps.

Every `every_n_epochs` validations it runs the 3DMM-CNN protocol (eval/protocol.py) on a small benchmark (the
synthetic photo set by default) through the module being trained and logs `val/verify_acc` and
`val/verify_acc_std`. The module's parameters come from `pl_module.predict_parameters(images)` when it has
that hook, else from `pl_module.regressor(pl_module.encoder(images).features).parameters`.
"""

from __future__ import annotations

import numpy as np
import torch
from lightning.pytorch import Callback, LightningModule, Trainer

from eval import benchmarks as B
from eval.protocol import verify
from models.modes import evaluating


def predict_parameters(pl_module: LightningModule, images: torch.Tensor) -> torch.Tensor:
    """Game parameters (B, 267) of template-aligned images (B, 3, S, S) in [0, 1] from the module being trained."""
    hook = getattr(pl_module, "predict_parameters", None)
    if callable(hook):
        return hook(images)
    return pl_module.regressor(pl_module.encoder(images).features).parameters


class VerificationCallback(Callback):
    """Logs `{key}` and `{key}_std`: verification accuracy with the regressed parameters as the descriptor."""

    def __init__(
        self,
        root: str,
        bench: str = "synthetic",
        every_n_epochs: int = 1,
        max_pairs: int = 600,
        batch_size: int = 64,
        image_size: int | None = None,
        seed: int = 0,
        key: str = "val/verify_acc",
    ) -> None:
        self.root, self.bench, self.every_n_epochs = root, bench, every_n_epochs
        self.max_pairs, self.batch_size, self.image_size, self.seed, self.key = (
            max_pairs,
            batch_size,
            image_size,
            seed,
            key,
        )
        self.benchmark: B.Benchmark | None = None
        self.images: torch.Tensor | None = None

    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        """Read and align the benchmark once (uint8 in memory), at the encoder's image size."""
        if stage != "fit" or self.images is not None:
            return
        size = self.image_size or getattr(getattr(pl_module, "encoder", None), "image_size", None) or 256
        bench = B.load(self.bench, self.root, size, max_pairs=self.max_pairs, seed=self.seed)
        self.benchmark = B.limit_pairs(bench, self.max_pairs) if self.bench != "synthetic" else bench
        self.images = torch.from_numpy(np.stack([self.benchmark.image(i) for i in range(self.benchmark.num_images)]))

    def on_validation_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Verify with the current weights (skipped in the sanity check); every rank computes the same numbers."""
        if trainer.sanity_checking or self.images is None or trainer.current_epoch % self.every_n_epochs:
            return
        result = self.evaluate(pl_module)
        # Every rank holds the same numbers; sync_dist only keeps Lightning's epoch-level DDP check satisfied.
        pl_module.log(self.key, result.accuracy, sync_dist=True)
        pl_module.log(f"{self.key}_std", result.std, sync_dist=True)

    def evaluate(self, pl_module: LightningModule):
        """The protocol's result on the benchmark with the module's current weights."""
        chunks = []
        with evaluating(pl_module), torch.no_grad():
            for batch in self.images.split(self.batch_size):
                images = batch.to(pl_module.device).permute(0, 3, 1, 2).float() / 255
                chunks.append(predict_parameters(pl_module, images).float().cpu())
        x = torch.cat(chunks).numpy()
        bench = self.benchmark
        return verify(x[bench.pairs[:, 0]], x[bench.pairs[:, 1]], bench.is_same, bench.folds)
