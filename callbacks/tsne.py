"""t-SNE of photo vs screenshot parameters during training (the paper's Fig. 4): one PNG per chosen epoch.

Every `every_n_epochs` validation epochs the module regresses parameters for a fixed validation subset of
both domains (`datamodule.preview_batch(num_samples)` -> {"target": {"image"}, "source": {"image"}}), and
sklearn's t-SNE embeds them together. The picture goes to `images/tsne-epoch{E:03d}.png` in the run folder
and to loggers that take images (W&B). Drawn with matplotlib when it is installed, else with PIL.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import torch
from lightning.pytorch import Callback, LightningModule, Trainer
from lightning.pytorch.utilities import rank_zero_only, rank_zero_warn
from PIL import Image, ImageDraw
from sklearn.manifold import TSNE

from models.modes import evaluating

DOMAINS = {"source": ("photos", (230, 120, 20)), "target": ("screenshots", (40, 90, 200))}  # label, RGB


def draw_embedding(points: np.ndarray, labels: np.ndarray, title: str, size: int = 512) -> np.ndarray:
    """A uint8 (size, size, 3) scatter plot of 2-D points coloured by domain (labels index DOMAINS)."""
    if importlib.util.find_spec("matplotlib") is not None:  # nicer, but not a dependency
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        figure = Figure(figsize=(size / 100, size / 100), dpi=100)
        axes = figure.add_subplot()
        for k, (name, colour) in enumerate(DOMAINS.values()):
            axes.scatter(*points[labels == k].T, s=8, color=np.array(colour) / 255, label=name)
        axes.set_title(title)
        axes.set_xticks([]), axes.set_yticks([])
        axes.legend(loc="upper right")
        canvas = FigureCanvasAgg(figure)
        canvas.draw()
        return np.asarray(canvas.buffer_rgba())[..., :3].copy()
    image = Image.new("RGB", (size, size), "white")
    pen = ImageDraw.Draw(image)
    margin = 30
    low, high = points.min(0), points.max(0)
    pixels = margin + (points - low) / np.maximum(high - low, 1e-9) * (size - 2 * margin)
    for (x, y), label in zip(pixels, labels):
        pen.ellipse([x - 3, y - 3, x + 3, y + 3], fill=list(DOMAINS.values())[label][1])
    pen.text((8, 6), title, fill="black")
    for k, (name, colour) in enumerate(DOMAINS.values()):
        pen.text((size - 110, 6 + 14 * k), f"o {name}", fill=colour)
    return np.asarray(image)


class TSNECallback(Callback):
    """Saves `images/tsne-epoch{E:03d}.png` every `every_n_epochs` validation epochs and logs it as `{key}`."""

    def __init__(
        self,
        every_n_epochs: int = 10,
        num_samples: int = 200,
        perplexity: float = 30.0,
        seed: int = 0,
        key: str = "val/tsne",
    ) -> None:
        self.every_n_epochs = every_n_epochs
        self.num_samples = num_samples
        self.perplexity = perplexity
        self.seed = seed
        self.key = key
        self.folder: Path | None = None
        self.samples: dict[str, torch.Tensor] | None = None

    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        """The run folder's images/ (on every rank: trainer.log_dir is a collective call)."""
        if stage == "fit":
            self.folder = Path(trainer.log_dir or trainer.default_root_dir) / "images"

    def on_validation_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Embed the fixed samples with the current weights (skipped during the sanity check)."""
        if trainer.sanity_checking or self.folder is None or trainer.current_epoch % self.every_n_epochs:
            return
        self._save_and_log(trainer, pl_module)

    def _fixed_samples(self, trainer: Trainer) -> dict[str, torch.Tensor] | None:
        preview = getattr(trainer.datamodule, "preview_batch", None)
        batch = preview(self.num_samples) if preview is not None else {}
        if not all(isinstance(batch.get(domain), dict) for domain in DOMAINS):
            rank_zero_warn(
                "TSNECallback needs datamodule.preview_batch(k) -> {'target': ..., 'source': ...} "
                "(CrossDomainDataModule with data.source); no t-SNE"
            )
            return None
        return {domain: batch[domain]["image"] for domain in DOMAINS}

    @rank_zero_only
    def _save_and_log(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if self.samples is None:
            self.samples = self._fixed_samples(trainer)
        if not self.samples:
            return
        with evaluating(pl_module), torch.no_grad():  # in chunks: num_samples images at paper scale do not fit one pass
            params = [
                torch.cat([pl_module(chunk.to(pl_module.device)).float().cpu() for chunk in images.split(32)])
                for images in self.samples.values()
            ]
        features = torch.cat(params).numpy()
        labels = np.concatenate([np.full(len(p), k) for k, p in enumerate(params)])
        perplexity = min(self.perplexity, (len(features) - 1) / 3)  # sklearn needs perplexity < n
        points = TSNE(2, perplexity=perplexity, init="pca", random_state=self.seed).fit_transform(features)
        epoch = trainer.current_epoch
        picture = draw_embedding(points, labels, f"parameters, epoch {epoch} (step {trainer.global_step})")
        self.folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(picture).save(self.folder / f"tsne-epoch{epoch:03d}.png")
        for logger in trainer.loggers:
            if hasattr(logger, "log_image"):  # WandbLogger and others with an image API
                logger.log_image(key=self.key, images=[picture], caption=[f"epoch {epoch}"], step=trainer.global_step)
