"""Samplers: batches of P identities x K photos (docs/method.md#contrastive-loss: positives share an
identity, negatives are the rest of the batch), and the screenshots' per-epoch shuffle.

The sampler shards by rank itself: each of the world_size processes gets its own identities, so
identities gathered across ranks stay distinct negatives. Lightning cannot inject its
DistributedSampler into a batch sampler, so a DDP trainer needs `use_distributed_sampler: false`
(the DataModule shards every other loader itself too).
"""

from __future__ import annotations

import logging

import numpy as np
from torch.utils.data import DistributedSampler, Sampler

log = logging.getLogger(__name__)


class IdentityBatchSampler(Sampler):
    """This rank's batches of `identities_per_batch` people x `photos_per_identity` photos each.

    Each pass draws, from (seed, epoch, pass), a permutation of the people with at least K photos
    and K photos of each; rank r takes every world_size-th person of it, so ranks are disjoint and
    all have the same number of batches (the people left over are dropped for that pass). The
    epoch is read from the trainer, like EpochShuffleSampler, so a resumed run repeats the
    uninterrupted run's batches; a loader that restarts within an epoch (the shorter side of a
    "max_size_cycle" CombinedLoader) gets the next pass, a fresh draw. With shuffle=False (validation)
    every pass is the same fixed draw from `seed`. A batch lists (position, augmentation seed) keys,
    the K photos of one person next to each other: person i holds batch rows i*K ... i*K + K - 1.
    """

    def __init__(
        self,
        identities,
        identities_per_batch: int,
        photos_per_identity: int = 2,
        *,
        seed: int = 0,
        num_replicas: int = 1,
        rank: int = 0,
        shuffle: bool = True,
        trainer=None,
    ) -> None:
        if identities_per_batch < 2 or photos_per_identity < 2:
            raise ValueError(
                f"need at least 2 identities x 2 photos per batch (positives and negatives), got "
                f"identities_per_batch={identities_per_batch}, photos_per_identity={photos_per_identity}"
            )
        self.per_batch, self.per_identity = identities_per_batch, photos_per_identity
        self.seed, self.num_replicas, self.rank, self.shuffle, self.trainer = seed, num_replicas, rank, shuffle, trainer
        labels, group, counts = np.unique(np.asarray(identities), return_inverse=True, return_counts=True)
        self.by_group = np.argsort(group, kind="stable")  # positions, grouped by identity
        self.group_of_sorted = np.repeat(np.arange(len(labels)), counts)
        self.starts = np.cumsum(counts) - counts
        self.eligible = np.flatnonzero(counts >= photos_per_identity)
        if len(self.eligible) < len(labels):
            log.info(
                "%d of %d identities have fewer than %d photos and are skipped",
                len(labels) - len(self.eligible),
                len(labels),
                photos_per_identity,
            )
        self.num_batches = len(self.eligible) // (identities_per_batch * num_replicas)
        if self.num_batches == 0:
            raise ValueError(
                f"{len(self.eligible)} identities with >= {photos_per_identity} photos, fewer than one "
                f"batch of {identities_per_batch} per process x {num_replicas} processes"
            )
        self.epoch, self._pass, self._pass_epoch = 0, 0, None

    def set_epoch(self, epoch: int) -> None:
        """The epoch when no trainer is attached (Lightning calls it too; the trainer's count wins)."""
        self.epoch = epoch

    def __len__(self) -> int:
        return self.num_batches

    def __iter__(self):
        epoch = getattr(self.trainer, "current_epoch", None)
        epoch = self.epoch if epoch is None else epoch
        self._pass = self._pass + 1 if epoch == self._pass_epoch else 0
        self._pass_epoch = epoch
        rng = np.random.default_rng([self.seed, epoch, self._pass] if self.shuffle else [self.seed])
        people = rng.permutation(self.eligible) if self.shuffle else self.eligible
        people = people[: self.num_batches * self.per_batch * self.num_replicas]
        # K photos per person: the K smallest of one random key per photo (one vectorised draw for all).
        ranked = self.by_group[np.lexsort((rng.random(len(self.by_group)), self.group_of_sorted))]
        photos = ranked[self.starts[people][:, None] + np.arange(self.per_identity)]  # (people, K)
        seeds = rng.integers(0, 2**31, photos.shape)  # same draws on every rank: each takes its own slice
        size = self.per_batch * self.per_identity
        mine_photos = photos[self.rank :: self.num_replicas].reshape(-1, size)
        mine_seeds = seeds[self.rank :: self.num_replicas].reshape(-1, size)
        for batch_photos, batch_seeds in zip(mine_photos, mine_seeds):
            yield [(int(p), int(s)) for p, s in zip(batch_photos, batch_seeds)]


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
