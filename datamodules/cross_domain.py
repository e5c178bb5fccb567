"""The one DataModule of likeness: game screenshots (target domain) and face photos (source domain).

Imitator pre-training uses the target side alone. Cross-domain training adds the source side
through `source`: photos with identity labels, aligned to the template, P identities x K photos
per batch, sharded by rank (datamodules/photos.py, datamodules/sampler.py).
Over 300 lines on purpose: one DataModule's settings, set-up, loaders and resumable state read together; the readers
it uses live in screenshots.py, photo_sets.py and photos.py.
"""

from __future__ import annotations

import logging
import os
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch import LightningDataModule
from lightning.pytorch.utilities import CombinedLoader
from torch.utils.data import DataLoader, DistributedSampler
from torch.utils.data.dataloader import default_collate

from datamodules.photo_sets import PhotoSet, PhotoSource, open_photo_set
from datamodules.photos import AlignedScreenshotDataset, PhotoDataset, build_augmentation
from datamodules.sampler import EpochShuffleSampler, IdentityBatchSampler
from datamodules.screenshots import ON_CORRUPT, OnCorrupt, ScreenshotDataset, ScreenshotSet, open_screenshot_set
from datamodules.split import load_or_make_split
from game.parameters import check_same_table

log = logging.getLogger(__name__)


def images_to_float(batch: dict) -> dict:
    """Turn a batch's uint8 "image" into float32 [0, 1], the model-boundary contract (also per domain)."""
    if "image" not in batch:  # {"target": ..., "source": ...}
        return {key: images_to_float(value) for key, value in batch.items()}
    image = batch["image"]
    if image.dtype == torch.uint8:
        batch = {**batch, "image": image.float().div_(255.0)}
    return batch


class CrossDomainDataModule(LightningDataModule):
    """Batches of (parameters, screenshot) pairs from a screenshot set, split by split.json; with `source`,
    each paired with a batch of face photos.

    `batch_size` is the GLOBAL batch: each of the trainer's `world_size` processes loads
    `batch_size // world_size` (an error when it does not divide). `image_size=None` keeps the
    set's own size; another size resizes every image on load (antialiased bicubic).
    Without `source` (imitator pre-training), train and val batches reach the model as
    {"parameters": (B, 267) float32, "image": (B, 3, S, S) float32 in [0, 1], "index": (B,) rows in the set}.
    `target_root` may also be a photo-style set of ours (`generate: {style: photo, ...}`): its known parameters
    supervise like a screenshot's, and each picture is aligned to the template by its five points (not augmented).

    With `source` (docs/contracts.md 4.3), train AND val batches are
    {"target": the batch above, "source": {"image": (P*K, 3, S, S) float32 in [0, 1], "identity": (P*K,)
    int64, "parameters": (P*K, 267) float32 (ground truth of a synthetic set, NaN otherwise; never a
    training signal), "index": (P*K,) rows in the photo set}}, P = identities_per_batch and
    K = photos_per_identity PER PROCESS, the K photos of a person adjacent. Both sides come from one
    CombinedLoader in "max_size_cycle" mode (val too, so validation_step sees dataloader_idx 0 only):
    an epoch is the longer side, the shorter restarts (the source with a fresh draw). Photos are
    aligned to the template at S; the train photos are augmented. Under DDP the trainer needs
    `use_distributed_sampler: false`: every loader here shards itself by rank.

    `on_corrupt` (screenshots; the photos have `source.on_corrupt`): "raise" stops at a missing or undecodable
    screenshot, naming it; "skip" logs it with a count and serves the next readable row of the split instead (its
    own parameters with it), so a long run survives a damaged file. `python -m game generate` with the set's
    arguments re-renders damaged images.
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
        source: PhotoSource | None = None,
        generate: dict[str, Any] | None = None,
        on_corrupt: OnCorrupt = "raise",
    ) -> None:
        super().__init__()
        if on_corrupt not in ON_CORRUPT:
            raise ValueError(f"data.on_corrupt must be one of {ON_CORRUPT}, got {on_corrupt!r}")
        self.source = PhotoSource.of(source) if source is not None else None  # a dict works too: Python, checkpoints
        source = asdict(self.source) if isinstance(source, PhotoSource) else source  # hyper-parameters: plain data
        self.save_hyperparameters(logger=False)
        self.batch_size_per_device = batch_size
        self.screenshots: ScreenshotSet | None = None
        self.train_dataset: ScreenshotDataset | None = None
        self.val_dataset: ScreenshotDataset | None = None
        self.photos: PhotoSet | None = None
        self.source_train_dataset: PhotoDataset | None = None
        self.source_val_dataset: PhotoDataset | None = None

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
            self.screenshots = open_screenshot_set(self.hparams.target_root, self.hparams.on_corrupt)
        return self.screenshots

    def _split(self) -> dict:
        return load_or_make_split(
            self.split_file, len(self._open()), self.hparams.val_fraction, self.hparams.split_seed
        )

    def _open_photos(self) -> PhotoSet:
        if self.photos is None:
            source = self.source
            self.photos = open_photo_set(
                source.kind, source.root, source.val_fraction, source.split_seed, source.split_path, source.on_corrupt
            )
        return self.photos

    def prepare_data(self) -> None:
        """Render the sets with our game if `generate` asks for it and they are missing or unfinished,
        then validate them and write the split files once (rank 0 of each node)."""
        if self.hparams.generate is not None:
            self._generate_target()
        self._split()
        if self.source is not None:
            if self.source.generate is not None:
                self._generate_source()
            self._open_photos()

    def _generate_target(self) -> None:
        """`generate: {count, size, seed, style}`: make target_root with `game.dataset.generate` (resumable)."""
        from game.dataset import generate_once

        settings = {"size": self.hparams.image_size or 256, "style": "game", "seed": 0, **self.hparams.generate}
        if "count" not in settings:
            raise ValueError("data.generate needs a count (e.g. generate: {count: 2000})")
        generate_once(self.hparams.target_root, **settings)

    def _generate_source(self) -> None:
        """`source.generate: {count, size, seed, renders_per_identity}`: render the photo set (resumable)."""
        from game.dataset import generate_once

        settings = {"size": self.hparams.image_size or 256, "seed": 0, **self.source.generate, "style": "photo"}
        if "count" not in settings:
            raise ValueError("data.source.generate needs a count (e.g. generate: {count: 2000})")
        generate_once(self.source.root, **settings)

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
            log.warning(
                "%s holds %d px images; resizing each to %d px on load", screenshots.root, screenshots.size, size
            )
        on_corrupt = self.hparams.on_corrupt
        # A photo-style set (posed, shifted, scaled) is aligned to the template by its five points, as photos are.
        dataset = ScreenshotDataset if screenshots.points is None else AlignedScreenshotDataset
        self.train_dataset = dataset(screenshots, split["train"], size, on_corrupt)
        self.val_dataset = dataset(screenshots, split["val"], size, on_corrupt)
        if len(self.train_dataset) < self.hparams.batch_size:
            raise ValueError(
                f"{self.split_file}: the train split has {len(self.train_dataset)} samples, fewer than one "
                f"global batch (data.batch_size={self.hparams.batch_size})"
            )
        if self.source is not None:
            self._setup_source(size or screenshots.size)

    def _setup_source(self, size: int) -> None:
        """Photo datasets of the train and val identities, aligned at the model's input size."""
        photos, source = self._open_photos(), self.source
        self.source_train_dataset = PhotoDataset(
            photos, photos.rows("train"), size, build_augmentation(source.augment), source.on_corrupt
        )
        self.source_val_dataset = PhotoDataset(photos, photos.rows("val"), size, None, source.on_corrupt)
        for dataset in (self.source_train_dataset, self.source_val_dataset):  # fail here, not at the first batch
            self._identity_sampler(dataset, shuffle=False)

    def _rank(self) -> tuple[int, int]:
        trainer = self.trainer
        return (trainer.world_size, trainer.global_rank) if trainer is not None else (1, 0)

    def _identity_sampler(self, dataset: PhotoDataset, shuffle: bool) -> IdentityBatchSampler:
        world_size, rank = self._rank()
        try:
            return IdentityBatchSampler(
                dataset.identities,
                self.source.identities_per_batch,
                self.source.photos_per_identity,
                seed=int(os.environ.get("PL_GLOBAL_SEED", 0)),
                num_replicas=world_size,
                rank=rank,
                shuffle=shuffle,
                trainer=self.trainer,
            )
        except ValueError as error:
            split = "train" if dataset is self.source_train_dataset else "val"
            raise ValueError(
                f"{self.source.root}, {split} split: {error} (data.source.identities_per_batch, val_fraction)"
            ) from None

    def _source_loader(self, dataset: PhotoDataset, shuffle: bool) -> DataLoader:
        workers = self.hparams.num_workers if self.source.num_workers is None else self.source.num_workers
        return DataLoader(
            dataset,
            batch_sampler=self._identity_sampler(dataset, shuffle),
            num_workers=workers,
            pin_memory=self.hparams.pin_memory,
            persistent_workers=self.hparams.persistent_workers and workers > 0,
        )

    def _check_distributed_sampler_off(self) -> None:
        """The identity batch sampler shards by rank itself; Lightning's injection would break it."""
        trainer = self.trainer
        connector = getattr(trainer, "_accelerator_connector", None)
        if trainer is not None and trainer.world_size > 1 and getattr(connector, "use_distributed_sampler", False):
            raise ValueError(
                "data.source under DDP: set trainer.use_distributed_sampler: false (the DataModule shards "
                "every loader by rank itself; Lightning cannot inject a sampler into a batch sampler)"
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

    def train_dataloader(self) -> DataLoader | CombinedLoader:
        """Shuffled, a new order each epoch from (global seed, epoch), this rank's shard only; with a source,
        zipped with this rank's P x K photo batches."""
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
        target = self._loader(self.train_dataset, sampler=sampler, drop_last=True)
        if self.source is None:
            return target
        self._check_distributed_sampler_off()
        source = self._source_loader(self.source_train_dataset, shuffle=True)
        return CombinedLoader({"target": target, "source": source}, mode="max_size_cycle")

    def val_dataloader(self) -> DataLoader | CombinedLoader:
        """Validation rows in order, this rank's shard; with a source, zipped with fixed photo batches."""
        world_size, rank = self._rank()
        if world_size == 1:
            target = self._loader(self.val_dataset, shuffle=False)
        else:  # the sampler Lightning would inject, made here so use_distributed_sampler: false works too
            sampler = DistributedSampler(self.val_dataset, num_replicas=world_size, rank=rank, shuffle=False)
            target = self._loader(self.val_dataset, sampler=sampler)
        if self.source is None:
            return target
        source = self._source_loader(self.source_val_dataset, shuffle=False)
        return CombinedLoader({"target": target, "source": source}, mode="max_size_cycle")

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        """Images become float [0, 1] on the device, after the cheap uint8 transfer."""
        return images_to_float(batch)

    def preview_batch(self, num_samples: int) -> dict:
        """A fixed batch of float images for image grids: the first val rows (with a source, {"target", "source"})."""
        if self.val_dataset is None:
            self.setup("fit")
        count = min(num_samples, len(self.val_dataset))
        target = images_to_float(default_collate([self.val_dataset[i] for i in range(count)]))
        if self.source is None:
            return target
        sampler = self._identity_sampler(self.source_val_dataset, shuffle=False)  # this rank's val photos
        keys = [key for batch in sampler for key in batch][:num_samples]
        source = images_to_float(default_collate([self.source_val_dataset[key] for key in keys]))
        return {"target": target, "source": source}

    def state_dict(self) -> dict:
        """What a checkpoint records about its data: the set, its parameter table and the split file."""
        screenshots = self._open()
        state = {
            "target_root": str(screenshots.root),
            "parameter_table_version": screenshots.parameter_table_version,
            "image_size": self.image_size,
            "split_file": str(self.split_file),
        }
        if self.source is not None:
            photos = self._open_photos()
            state.update(
                source_kind=photos.kind,
                source_root=str(photos.root),
                source_split_file=str(photos.split_file) if photos.split_file else None,
            )
        return state

    def load_state_dict(self, state_dict: dict) -> None:
        """On resume, refuse a set whose parameter table differs from the checkpoint's."""
        manifest = Path(self.hparams.target_root) / "manifest.json"  # where the set records its table
        current = self._open().parameter_table_version
        check_same_table(manifest, current, "the checkpoint being resumed", state_dict.get("parameter_table_version"))
