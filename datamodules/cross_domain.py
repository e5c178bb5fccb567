"""The one DataModule of likeness: game screenshots (target domain) and, later, real photos (source).

Imitator pre-training uses the target side alone. Cross-domain training (issue 4) adds the
source side through `source`: photos with identity labels, P identities x 2 photos per batch,
sharded by rank.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch import LightningDataModule
from torch.utils.data import DataLoader, DistributedSampler
from torch.utils.data.dataloader import default_collate

from datamodules.screenshots import ScreenshotDataset, ScreenshotSet, open_screenshot_set
from datamodules.split import load_or_make_split

log = logging.getLogger(__name__)


def images_to_float(batch: dict) -> dict:
    """Turn a batch's uint8 "image" into float32 [0, 1], the model-boundary contract."""
    image = batch["image"]
    if image.dtype == torch.uint8:
        batch = {**batch, "image": image.float().div_(255.0)}
    return batch


class EpochShuffleSampler(DistributedSampler):
    """This rank's shard of a shuffle drawn from (seed, the trainer's current epoch).

    Lightning also calls set_epoch, but after resuming from a checkpoint written at an epoch's
    end its count runs one ahead of trainer.current_epoch (lightning 2.6); reading the trainer's
    epoch at each pass gives a resumed run the same order as an uninterrupted one.
    """

    def __init__(self, dataset, trainer, **kwargs) -> None:
        super().__init__(dataset, **kwargs)
        self.trainer = trainer

    def __iter__(self):
        if self.trainer is not None:
            self.epoch = self.trainer.current_epoch
        return super().__iter__()


class CrossDomainDataModule(LightningDataModule):
    """Batches of (parameters, screenshot) pairs from a screenshot set, split by split.json.

    `batch_size` is the GLOBAL batch: each of the trainer's `world_size` processes loads
    `batch_size // world_size` (an error when it does not divide). `image_size=None` keeps the
    set's own size; another size resizes every image on load (antialiased bicubic).
    Batches reach the model as {"parameters": (B, 267) float32, "image": (B, 3, S, S) float32
    in [0, 1], "index": (B,) rows in the set}.
    """

    def __init__(
        self,
        target_root: str,
        batch_size: int = 128,
        image_size: int | None = None,
        val_fraction: float = 0.05,
        split_seed: int = 0,
        split_path: str | None = None,
        num_workers: int = 4,
        pin_memory: bool = True,
        persistent_workers: bool = True,
        source: dict[str, Any] | None = None,
        generate: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self.save_hyperparameters(logger=False)
        if source is not None:
            raise NotImplementedError("the source (photo) side arrives with the cross-domain training (issue 4)")
        self.batch_size_per_device = batch_size
        self.screenshots: ScreenshotSet | None = None
        self.train_dataset: ScreenshotDataset | None = None
        self.val_dataset: ScreenshotDataset | None = None

    @property
    def split_file(self) -> Path:
        """Where split.json lives: `split_path`, else inside the screenshot set."""
        return Path(self.hparams.split_path or Path(self.hparams.target_root) / "split.json")

    @property
    def image_size(self) -> int | None:
        """Side of the images the model receives (known once the set is open when None was asked)."""
        if self.hparams.image_size is not None:
            return self.hparams.image_size
        return self.screenshots.size if self.screenshots is not None else None

    def _open(self) -> ScreenshotSet:
        if self.screenshots is None:
            self.screenshots = open_screenshot_set(self.hparams.target_root)
        return self.screenshots

    def _split(self) -> dict:
        return load_or_make_split(
            self.split_file, len(self._open()), self.hparams.val_fraction, self.hparams.split_seed
        )

    def prepare_data(self) -> None:
        """Render the set with our game if `generate` asks for it and it is missing or unfinished,
        then validate it and write split.json once (rank 0 of each node)."""
        if self.hparams.generate is not None:
            self._generate_target()
        self._split()

    def _generate_target(self) -> None:
        """`generate: {count, size, seed, style}`: make target_root with `game.dataset.generate` (resumable)."""
        from game.dataset import generate

        settings = {"size": self.hparams.image_size or 256, "style": "game", "seed": 0, **self.hparams.generate}
        if "count" not in settings:
            raise ValueError("data.generate needs a count (e.g. generate: {count: 2000})")
        manifest = Path(self.hparams.target_root) / "manifest.json"
        if not manifest.exists() or '"complete": true' not in manifest.read_text():
            log.info("rendering %s screenshots into %s", settings["count"], self.hparams.target_root)
            generate(self.hparams.target_root, **settings)

    def setup(self, stage: str | None = None) -> None:
        """Check the global batch against world_size and build the train/val datasets."""
        world_size = self.trainer.world_size if self.trainer is not None else 1
        if self.hparams.batch_size % world_size != 0:
            raise ValueError(
                f"data.batch_size={self.hparams.batch_size} is the global batch and must divide evenly "
                f"over world_size={world_size} processes; choose a multiple of {world_size}"
            )
        self.batch_size_per_device = self.hparams.batch_size // world_size
        if self.train_dataset is not None:
            return
        screenshots, split = self._open(), self._split()
        size = self.hparams.image_size
        if size is None and screenshots.size is None:  # a plain folder: take the first image's side
            size = ScreenshotDataset(screenshots, [0])[0]["image"].shape[-1]
            self.hparams.image_size = size
        if screenshots.size is not None and size is not None and size != screenshots.size:
            log.warning("%s holds %d px images; resizing each to %d px on load",
                        screenshots.root, screenshots.size, size)
        self.train_dataset = ScreenshotDataset(screenshots, split["train"], size)
        self.val_dataset = ScreenshotDataset(screenshots, split["val"], size)
        if len(self.train_dataset) < self.hparams.batch_size:
            raise ValueError(
                f"{self.split_file}: the train split has {len(self.train_dataset)} samples, fewer than one "
                f"global batch (data.batch_size={self.hparams.batch_size})"
            )

    def _loader(self, dataset, **kwargs) -> DataLoader:
        workers = self.hparams.num_workers
        return DataLoader(
            dataset,
            batch_size=self.batch_size_per_device,
            num_workers=workers,
            pin_memory=self.hparams.pin_memory,
            persistent_workers=self.hparams.persistent_workers and workers > 0,
            **kwargs,
        )

    def train_dataloader(self) -> DataLoader:
        """Shuffled, a new order each epoch from (global seed, epoch), this rank's shard only."""
        trainer = self.trainer
        # Our own DistributedSampler (Lightning keeps one it finds): the same order after a
        # resume as in an uninterrupted run, with one process or many.
        sampler = EpochShuffleSampler(
            self.train_dataset,
            trainer,
            num_replicas=trainer.world_size if trainer is not None else 1,
            rank=trainer.global_rank if trainer is not None else 0,
            shuffle=True,
            seed=int(os.environ.get("PL_GLOBAL_SEED", 0)),
            drop_last=True,
        )
        return self._loader(self.train_dataset, sampler=sampler, drop_last=True)

    def val_dataloader(self) -> DataLoader:
        """Validation rows in order (Lightning shards them by rank)."""
        return self._loader(self.val_dataset, shuffle=False)

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        """Images become float [0, 1] on the device, after the cheap uint8 transfer."""
        return images_to_float(batch)

    def preview_batch(self, num_samples: int) -> dict:
        """A fixed batch (the first validation rows) for image grids; images already float."""
        if self.val_dataset is None:
            self.setup("fit")
        count = min(num_samples, len(self.val_dataset))
        return images_to_float(default_collate([self.val_dataset[i] for i in range(count)]))

    def state_dict(self) -> dict:
        """What a checkpoint records about its data: the set, its parameter table and the split file."""
        screenshots = self._open()
        return {
            "target_root": str(screenshots.root),
            "parameter_table_version": screenshots.parameter_table_version,
            "image_size": self.image_size,
            "split_file": str(self.split_file),
        }

    def load_state_dict(self, state_dict: dict) -> None:
        """On resume, refuse a set whose parameter table differs from the checkpoint's."""
        recorded = state_dict.get("parameter_table_version")
        current = self._open().parameter_table_version
        if recorded is not None and current is not None and recorded != current:
            raise ValueError(
                f"the checkpoint was trained on parameter table {recorded}, but {self.hparams.target_root} "
                f"uses {current}: the 267 parameters mean different things"
            )
