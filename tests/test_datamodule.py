"""The screenshot side of the DataModule: both on-disk layouts, every rejection names its file, split.json."""

import json
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from fakes import fake_parameters, write_game_folder, write_screenshot_set

from datamodules import CrossDomainDataModule
from datamodules.screenshots import open_screenshot_set


def datamodule(root, **kwargs):
    kwargs = {"batch_size": 4, "num_workers": 0, "pin_memory": False, **kwargs}
    return CrossDomainDataModule(target_root=str(root), **kwargs)


def test_reads_format_v1(tmp_path):
    root = write_screenshot_set(tmp_path / "set", count=20, size=32)
    dm = datamodule(root, val_fraction=0.2)
    dm.prepare_data()
    dm.setup("fit")
    assert (len(dm.train_dataset), len(dm.val_dataset)) == (16, 4)
    batch = dm.on_after_batch_transfer(next(iter(dm.train_dataloader())), 0)
    assert batch["parameters"].shape == (4, 267) and batch["parameters"].dtype == torch.float32
    assert batch["image"].shape == (4, 3, 32, 32) and batch["image"].dtype == torch.float32
    assert batch["image"].min() >= 0.0 and batch["image"].max() <= 1.0
    row = int(batch["index"][0])
    np.testing.assert_array_equal(batch["parameters"][0].numpy(), np.load(root / "parameters.npy")[row])
    assert dm.state_dict()["parameter_table_version"] == "fake-table-v1"


def test_reads_any_game_folder(tmp_path):
    root = write_game_folder(tmp_path / "game", count=8, size=48)
    dm = datamodule(root, val_fraction=0.25)
    dm.setup("fit")
    item = dm.train_dataset[0]
    assert item["image"].shape == (3, 48, 48) and dm.image_size == 48
    assert len(dm.train_dataset) == 6


def test_resizes_to_the_requested_size(tmp_path):
    dm = datamodule(write_screenshot_set(tmp_path / "set", count=8, size=64), image_size=32)
    dm.setup("fit")
    assert dm.train_dataset[0]["image"].shape == (3, 32, 32)


def test_rejects_corrupt_image(tmp_path):
    root = write_screenshot_set(tmp_path / "set", count=8, size=32)
    bad = root / "images" / "0000003.png"
    bad.write_bytes(bad.read_bytes()[:40])  # truncated PNG
    dm = datamodule(root, val_fraction=0.5)
    dm.setup("fit")
    dataset = dm.train_dataset if 3 in dm.train_dataset.indices else dm.val_dataset
    with pytest.raises(ValueError, match="0000003.png: cannot decode image"):
        dataset[dataset.indices.index(3)]


def test_rejects_missing_image(tmp_path):
    root = write_screenshot_set(tmp_path / "set", count=8, size=32)
    (root / "images" / "0000005.png").unlink()
    with pytest.raises(FileNotFoundError, match="0000005.png: image missing"):
        open_screenshot_set(root)


def test_rejects_incomplete_set_and_says_how_to_resume(tmp_path):
    root = write_screenshot_set(tmp_path / "set", count=4, size=32, complete=False)
    with pytest.raises(ValueError, match=r"manifest.json: the set is incomplete.*python -m game generate --out"):
        open_screenshot_set(root)


def test_rejects_wrong_parameter_count_in_manifest(tmp_path):
    root = write_screenshot_set(tmp_path / "set", count=4, size=32)
    manifest = json.loads((root / "manifest.json").read_text())
    (root / "manifest.json").write_text(json.dumps({**manifest, "num_parameters": 266}))
    with pytest.raises(ValueError, match="manifest.json: num_parameters is 266, expected 267"):
        open_screenshot_set(root)


def test_rejects_wrong_parameter_count_in_array(tmp_path):
    root = write_screenshot_set(tmp_path / "set", count=4, size=32)
    np.save(root / "parameters.npy", fake_parameters(4)[:, :266])
    with pytest.raises(ValueError, match=r"parameters.npy: shape \(4, 266\), expected \(4, 267\)"):
        open_screenshot_set(root)


@pytest.mark.parametrize("value, message", [(np.nan, "not finite"), (np.inf, "not finite"), (2.6, "outside")])
def test_rejects_bad_parameter_values(tmp_path, value, message):
    parameters = fake_parameters(6)
    parameters[4, 10] = value
    root = write_screenshot_set(tmp_path / "set", count=6, size=32, parameters=parameters)
    with pytest.raises(ValueError, match=rf"parameters.npy row 4: parameter 10 is .*{message}"):
        open_screenshot_set(root)


def test_game_folder_errors_name_file_and_line(tmp_path):
    root = write_game_folder(tmp_path / "game", count=4, size=16)
    lines = (root / "parameters.csv").read_text().splitlines()
    lines[3] = lines[3].rsplit(",", 1)[0] + ",nan"  # line 4 = third data row
    (root / "parameters.csv").write_text("\n".join(lines) + "\n")
    with pytest.raises(ValueError, match=r"parameters.csv line 4 \(face_002.png\): parameter 266 is nan"):
        open_screenshot_set(root)
    lines[3] = lines[3].rsplit(",", 1)[0]  # one parameter short
    (root / "parameters.csv").write_text("\n".join(lines) + "\n")
    with pytest.raises(ValueError, match="parameters.csv line 4: 266 parameters, expected 267"):
        open_screenshot_set(root)


def test_global_batch_must_divide_over_processes(tmp_path):
    dm = datamodule(write_screenshot_set(tmp_path / "set", count=16, size=16), batch_size=6)
    dm.trainer = SimpleNamespace(world_size=4, global_rank=0)
    with pytest.raises(ValueError, match="batch_size=6 is the global batch.*world_size=4"):
        dm.setup("fit")
    dm.hparams.batch_size = 8
    dm.setup("fit")
    assert dm.batch_size_per_device == 2


def test_split_is_written_once_and_stable(tmp_path):
    root = write_screenshot_set(tmp_path / "set", count=40, size=16)
    first = datamodule(root, val_fraction=0.1, split_seed=3)
    first.prepare_data()
    text = (root / "split.json").read_text()
    split = json.loads(text)
    assert split["count"] == 40 and len(split["val"]) == 4 and not set(split["val"]) & set(split["train"])
    second = datamodule(root, val_fraction=0.1, split_seed=3)
    second.setup("fit")
    assert second.val_dataset.indices == split["val"] and (root / "split.json").read_text() == text
    with pytest.raises(ValueError, match="split.json was made for"):
        datamodule(root, val_fraction=0.1, split_seed=4).setup("fit")


def test_train_order_is_a_function_of_seed_and_epoch(tmp_path, monkeypatch):
    monkeypatch.setenv("PL_GLOBAL_SEED", "7")
    dm = datamodule(write_screenshot_set(tmp_path / "set", count=24, size=16), val_fraction=0.25)
    dm.setup("fit")

    def order(epoch):
        loader = dm.train_dataloader()
        loader.sampler.set_epoch(epoch)
        return [int(i) for batch in loader for i in batch["index"]]

    assert order(1) == order(1) and order(0) != order(1)


def test_resuming_on_another_parameter_table_names_the_manifest(tmp_path):
    root = write_screenshot_set(tmp_path / "set", count=20, size=32)
    dm = datamodule(root)
    dm.load_state_dict({"parameter_table_version": "fake-table-v1"})  # the same table: fine
    dm.load_state_dict({})  # none recorded: nothing to compare
    with pytest.raises(ValueError, match=r"manifest\.json uses parameter table fake-table-v1, but the checkpoint"):
        dm.load_state_dict({"parameter_table_version": "v1-000000000000"})
