"""A FaceFeatureReader's frozen features kept on disk, so fits over the same pictures pay the frozen nets once.

NOT in the paper (issue 13: the feature-group ablations). The reader (models.readers.FaceFeatureReader) caches
the frozen features of each picture in memory, keyed by a hash of the picture's bytes; a new fit starts empty and
spends most of its first epoch in the landmark net and dlib (~10 min for 19,000 rows on one CPU thread). This
callback loads that cache from a file (by default FOLDER.features.npz beside the training set's FOLDER) when the
fit starts and writes it back after every training epoch and at
the end of fit, group by group, so a fit with the groups `mesh` + `colour` and a later one with `colour` alone
both read what the first computed. Written here, not taken from a library: the keys and the group layout are the
reader's own.

File (`.npz`): a fingerprint of the frozen networks (FEATURE_FINGERPRINT), and per group `GROUP_keys`
(N, 16) uint8 picture hashes with `GROUP` (N, width) float32 features. A file made by other frozen networks is
refused, never mixed in; a write goes to a temporary file renamed into place, and rows the fit did not compute
(other groups, other pictures) are kept. Under DDP every rank loads the file and only rank 0 writes its own rows.
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import numpy as np
import torch
from lightning.pytorch import Callback, LightningModule, Trainer

from models.face_features import GROUP_WIDTHS, GROUPS, group_columns
from models.readers import PICTURE_KEY_BYTES as KEY_BYTES
from models.readers import FaceFeatureReader
from models.weights import FACE_API_VERSION, MEDIAPIPE_VERSION

FEATURE_FINGERPRINT = (
    f"mediapipe {MEDIAPIPE_VERSION} landmark net, face-api {FACE_API_VERSION} dlib descriptor, "
    f"groups {dict(GROUP_WIDTHS)}, colour regions v1"
)


def read_feature_cache(path: Path) -> dict[str, dict[bytes, np.ndarray]]:
    """group -> {picture hash: features}; {} for a missing file; ValueError naming the file when it is not ours."""
    if not path.exists():
        return {}
    if path.is_dir():
        raise ValueError(f"feature cache {path}: is a folder, expected a .npz file")
    try:
        archive = np.load(path, allow_pickle=False)  # garbage reads as a pickle, which allow_pickle=False refuses
        contents = {name: archive[name] for name in archive.files}
    except (OSError, EOFError, ValueError, zipfile.BadZipFile) as error:
        raise ValueError(f"feature cache {path}: unreadable ({error}); delete it or give another path") from error
    fingerprint = str(contents["fingerprint"]) if "fingerprint" in contents else None
    if fingerprint != FEATURE_FINGERPRINT:
        raise ValueError(
            f"feature cache {path}: made by other frozen networks ({fingerprint!r}, expected "
            f"{FEATURE_FINGERPRINT!r}); delete it or give another path"
        )
    groups = {}
    for group in (g for g in GROUPS if g in contents):
        keys, values = contents.get(f"{group}_keys", np.zeros((0, 0))), contents[group]
        if keys.shape != (len(values), KEY_BYTES) or values.shape[1:] != (GROUP_WIDTHS[group],):
            raise ValueError(
                f"feature cache {path}: group {group} has keys {keys.shape} and features {values.shape}, "
                f"expected (N, {KEY_BYTES}) and (N, {GROUP_WIDTHS[group]})"
            )
        groups[group] = {key.tobytes(): row for key, row in zip(keys, values)}
    return groups


def write_feature_cache(path: Path, groups: dict[str, dict[bytes, np.ndarray]]) -> None:
    """Write every group's rows to `path` through a temporary file, so an interrupted write loses nothing."""
    arrays = {"fingerprint": np.array(FEATURE_FINGERPRINT)}
    for group, rows in groups.items():
        keys = np.frombuffer(b"".join(rows), np.uint8).reshape(len(rows), KEY_BYTES)
        arrays[f"{group}_keys"] = keys
        width = GROUP_WIDTHS[group]
        arrays[group] = np.stack(list(rows.values())).astype(np.float32) if rows else np.zeros((0, width), np.float32)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(temporary, "wb") as file:
            np.savez(file, **arrays)
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def beside_training_set(target_root: str | os.PathLike) -> Path:
    """The default cache file of a training set: FOLDER.features.npz next to the set's folder."""
    root = Path(target_root)
    return root.with_name(f"{root.name}.features.npz")


class FeatureCache(Callback):
    """Load a FaceFeatureReader's feature cache at fit start; write it back after each training epoch.

    `path` None: beside the datamodule's training set (`beside_training_set` of its `target_root`)."""

    def __init__(self, path: str | os.PathLike | None = None) -> None:
        self.path = None if path is None else Path(path)
        self.loaded_rows = 0  # pictures whose features came from the file (all the reader's groups)
        self._written_rows = -1

    def reader(self, pl_module: LightningModule) -> FaceFeatureReader:
        net = getattr(pl_module, "net", None)
        if not isinstance(net, FaceFeatureReader):
            raise ValueError(
                f"FeatureCache({self.path}) needs a module whose `net` is a models.readers.FaceFeatureReader, "
                f"got {type(net).__name__}"
            )
        if not net.cache_rows:
            raise ValueError(f"FeatureCache({self.path}): the reader's cache_rows is 0 (its cache is off)")
        return net

    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        reader = self.reader(pl_module)
        if self.path is None:
            target_root = dict(getattr(getattr(trainer, "datamodule", None), "hparams", {})).get("target_root")
            if target_root is None:
                raise ValueError("FeatureCache(path=None) needs a datamodule with a target_root; give a path")
            self.path = beside_training_set(target_root)
        groups = tuple(reader.features)
        stored = read_feature_cache(self.path)
        if not all(group in stored for group in groups):
            return
        keys = set.intersection(*(set(stored[group]) for group in groups))
        for key in list(keys)[: max(reader.cache_rows - len(reader._cache), 0)]:
            reader._cache[key] = torch.from_numpy(np.concatenate([stored[group][key] for group in groups]))
            self.loaded_rows += 1
        self._written_rows = len(reader._cache)

    def on_train_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self.save(trainer, pl_module)

    def on_fit_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self.save(trainer, pl_module)

    def save(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Add the reader's rows to the file (rank 0; nothing to do when no new picture was seen)."""
        reader = self.reader(pl_module)
        if not trainer.is_global_zero or len(reader._cache) == self._written_rows:
            return
        stored = read_feature_cache(self.path)  # re-read: another fit may have added rows meanwhile
        for group, columns in group_columns(reader.features).items():
            rows = stored.setdefault(group, {})
            for key, features in reader._cache.items():
                rows.setdefault(key, features[columns].float().cpu().numpy())
        write_feature_cache(self.path, stored)
        self._written_rows = len(reader._cache)
