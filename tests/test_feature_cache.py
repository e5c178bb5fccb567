"""callbacks.FeatureCache: a reader's frozen features kept on disk between fits, group by group; bad files refused."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from lightning.pytorch import Trainer
from torch import nn
from torch.utils.data import DataLoader

from callbacks.feature_cache import FeatureCache, read_feature_cache, write_feature_cache
from lightning_modules.reader import ParameterReaderModule
from models.face_features import GROUP_WIDTHS, GROUPS, FaceFeatures
from models.readers import FaceFeatureReader


def pictures(count: int, seed: int) -> list[dict]:
    generator = torch.Generator().manual_seed(seed)
    images = torch.rand(count, 3, 64, 64, generator=generator)
    return [{"image": image, "parameters": torch.zeros(267)} for image in images]


def fit(groups: tuple[str, ...], rows: list[dict], path: Path, tmp_path: Path) -> FaceFeatureReader:
    torch.manual_seed(0)
    reader = FaceFeatureReader(list(groups), hidden=16)
    trainer = Trainer(
        accelerator="cpu",
        max_epochs=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=tmp_path,
        callbacks=[FeatureCache(path)],
    )
    trainer.fit(ParameterReaderModule(reader), DataLoader(rows, batch_size=4))
    return reader


@pytest.mark.parametrize("second", [("colour",), ("mesh", "identity"), GROUPS])
def test_a_second_fit_reads_every_feature_from_the_file_and_runs_no_frozen_net(tmp_path, monkeypatch, second):
    rows, path = pictures(8, seed=0), tmp_path / "features.npz"
    fit(GROUPS, rows, path, tmp_path)
    stored = read_feature_cache(path)
    assert set(stored) == set(GROUPS) and all(len(stored[group]) == 8 for group in GROUPS)
    images = torch.stack([row["image"] for row in rows])
    expected = FaceFeatures(second)(images)

    def refuse(self, images):
        raise AssertionError("a frozen net ran although every feature was in the file")

    monkeypatch.setattr(FaceFeatures, "forward", refuse)
    reader = fit(second, rows, path, tmp_path)
    torch.testing.assert_close(reader.frozen_features(images), expected, rtol=1e-5, atol=1e-5)  # batch of 4 vs 8


def test_rows_of_other_groups_and_other_pictures_are_kept(tmp_path):
    path = tmp_path / "features.npz"
    fit(GROUPS, pictures(4, seed=0), path, tmp_path)
    fit(("colour",), pictures(4, seed=1), path, tmp_path)
    stored = read_feature_cache(path)
    assert {group: len(rows) for group, rows in stored.items()} == {"mesh": 4, "identity": 4, "colour": 8}
    assert not list(tmp_path.glob(".features.npz.*"))  # the temporary file was renamed into place


def test_a_write_round_trips_keys_and_features(tmp_path):
    rows = {bytes([i]) * 16: np.full(GROUP_WIDTHS["colour"], i, np.float32) for i in range(3)}
    write_feature_cache(tmp_path / "c.npz", {"colour": rows})
    read = read_feature_cache(tmp_path / "c.npz")["colour"]
    assert list(read) == list(rows) and all(np.array_equal(read[key], rows[key]) for key in rows)


def bad_file(kind: str, path: Path) -> Path:
    if kind == "folder":
        path.mkdir()
    elif kind == "garbage":
        path.write_bytes(b"not an npz at all")
    elif kind == "other networks":
        np.savez(path, fingerprint=np.array("some other landmark net"))
    elif kind == "wrong width":
        write_feature_cache(path, {})
        with np.load(path) as archive:
            fingerprint = archive["fingerprint"]
        np.savez(path, fingerprint=fingerprint, colour_keys=np.zeros((2, 16), np.uint8), colour=np.zeros((2, 7)))
    return path


@pytest.mark.parametrize(
    "kind, message",
    [
        ("folder", "is a folder"),
        ("garbage", "unreadable"),
        ("other networks", "made by other frozen networks"),
        ("wrong width", "group colour has keys"),
    ],
)
def test_a_bad_cache_file_is_refused_naming_it(tmp_path, kind, message):
    path = bad_file(kind, tmp_path / "features.npz")
    with pytest.raises(ValueError, match=message) as error:
        fit(("colour",), pictures(4, seed=0), path, tmp_path)
    assert str(path) in str(error.value)


@pytest.mark.parametrize(
    "net, message",
    [
        (nn.Linear(1, 1), "got Linear"),
        (FaceFeatureReader(["colour"], hidden=8, cache_rows=0), "cache is off"),
    ],
)
def test_a_module_without_a_caching_feature_reader_is_refused(tmp_path, net, message):
    with pytest.raises(ValueError, match=message):
        FeatureCache(tmp_path / "f.npz").setup(None, SimpleNamespace(net=net), "fit")


def test_a_write_that_fails_midway_leaves_the_old_file_whole(tmp_path, monkeypatch):
    path, rows = tmp_path / "c.npz", {b"k" * 16: np.ones(GROUP_WIDTHS["colour"], np.float32)}
    write_feature_cache(path, {"colour": rows})
    before = path.read_bytes()

    def fail(file, **arrays):
        file.write(b"half an archive")
        raise OSError("No space left on device")

    monkeypatch.setattr(np, "savez", fail)
    with pytest.raises(OSError):
        write_feature_cache(path, {"colour": rows | {b"j" * 16: rows[b"k" * 16]}})
    assert path.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == ["c.npz"]


def test_without_a_path_the_file_sits_beside_the_training_set(tmp_path):
    datamodule = SimpleNamespace(hparams={"target_root": str(tmp_path / "data" / "photo-64")})
    cache = FeatureCache()
    cache.setup(
        SimpleNamespace(datamodule=datamodule), SimpleNamespace(net=FaceFeatureReader(["colour"], hidden=8)), "fit"
    )
    assert cache.path == tmp_path / "data" / "photo-64.features.npz"
    with pytest.raises(ValueError, match="needs a datamodule with a target_root"):
        FeatureCache().setup(
            SimpleNamespace(datamodule=None), SimpleNamespace(net=FaceFeatureReader(["colour"], hidden=8)), "fit"
        )
