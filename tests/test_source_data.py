"""The source (photo) side of the DataModule: three layouts, alignment, the P x K identity sampler, combined batches."""

import functools
import logging
from types import SimpleNamespace

import lightning as L
import numpy as np
import pytest
import torch
from fakes import CELEBA_TYPICAL_POINTS, write_celeba, write_photo_folders, write_screenshot_set
from lightning.pytorch.utilities import CombinedLoader
from PIL import Image

from datamodules import CrossDomainDataModule
from datamodules.photo_sets import CELEBA_MEAN_LANDMARKS, PhotoSource, open_photo_set
from datamodules.photos import PhotoDataset, align_to_template, build_augmentation
from datamodules.sampler import IdentityBatchSampler
from game.framing import TEMPLATE


@pytest.fixture(scope="module")
def synthetic(rendered_set, tmp_path_factory):
    """A tiny photo-style set of our game: 8 photos, 4 identities x 2, 32 px; a copy (DataModules write into it)."""
    return rendered_set(
        8, 32, style="photo", renders_per_identity=2, into=tmp_path_factory.mktemp("synthetic") / "photos"
    )


def datamodule(target, source, **kwargs):
    kwargs = {"batch_size": 4, "num_workers": 0, "pin_memory": False, "val_fraction": 0.2, **kwargs}
    return CrossDomainDataModule(target_root=str(target), source=source, **kwargs)


def first_batch(loader):
    batch = next(iter(loader))
    return batch[0] if isinstance(loader, CombinedLoader) else batch  # CombinedLoader yields (batch, idx, loader idx)


def blob_centre(image: np.ndarray, near: np.ndarray, radius: int = 5) -> np.ndarray:
    """Brightness-weighted centre (pixel-index coordinates) of the blob near `near`."""
    grey = image.astype(np.float64).mean(-1)
    x0, y0 = np.round(near).astype(int)
    window = grey[y0 - radius : y0 + radius + 1, x0 - radius : x0 + radius + 1]
    window = np.clip(window - np.median(grey), 0, None)
    ys, xs = np.mgrid[y0 - radius : y0 + radius + 1, x0 - radius : x0 + radius + 1]
    return np.array([(window * xs).sum(), (window * ys).sum()]) / window.sum()


# ------------------------------------------------------------------------------------------------ readers


def test_reads_celeba_layout(tmp_path):
    root = write_celeba(tmp_path / "celeba", identities=8, photos_per_identity=3)
    photos = open_photo_set("celeba", root)
    assert len(photos) == 24 and photos.files[0] == root / "img_align_celeba" / "000001.jpg"
    assert set(photos.identities) == {100 + 7 * i for i in range(8)}
    assert set(photos.identities[photos.splits == "test"]) == {149}
    assert set(photos.identities[photos.splits == "val"]) == {135, 142}
    # Columns in CelebA's order: "lefteye" (viewer's left = the subject's right eye) is our first point.
    line = (root / "list_landmarks_align_celeba.txt").read_text().splitlines()[2].split()
    np.testing.assert_array_equal(photos.points[0].ravel(), np.array(line[1:], float) + 0.5)
    x = photos.points[..., 0]
    assert (x[:, 0] < x[:, 1]).all() and (x[:, 3] < x[:, 4]).all()


def test_celeba_without_landmark_file_uses_the_typical_points(tmp_path):
    root = write_celeba(tmp_path / "celeba", landmarks=False)
    photos = open_photo_set("celeba", root)
    np.testing.assert_array_equal(photos.points, np.broadcast_to(CELEBA_MEAN_LANDMARKS + 0.5, photos.points.shape))
    np.testing.assert_array_equal(CELEBA_MEAN_LANDMARKS, CELEBA_TYPICAL_POINTS)


@pytest.mark.parametrize("name", ["img_align_celeba", "identity_CelebA.txt", "list_eval_partition.txt"])
def test_missing_celeba_file_is_named_with_where_to_get_it(tmp_path, name):
    root = write_celeba(tmp_path / "celeba", identities=3, photos_per_identity=1)
    target = root / name
    if target.is_dir():
        for file in target.iterdir():
            file.unlink()
        target.rmdir()
    else:
        target.unlink()
    with pytest.raises(FileNotFoundError, match=rf"{name}: missing.*mmlab\.ie\.cuhk\.edu\.hk/projects/CelebA"):
        open_photo_set("celeba", root)


def test_celeba_lists_are_checked(tmp_path):
    root = write_celeba(tmp_path / "celeba", identities=3, photos_per_identity=2)
    landmarks = root / "list_landmarks_align_celeba.txt"
    lines = landmarks.read_text().splitlines()
    swapped = lines[1].replace("lefteye_x lefteye_y righteye_x righteye_y", "righteye_x righteye_y lefteye_x lefteye_y")
    landmarks.write_text("\n".join([lines[0], swapped] + lines[2:]))
    with pytest.raises(ValueError, match="list_landmarks_align_celeba.txt: line 2 should name the columns"):
        open_photo_set("celeba", root)
    landmarks.unlink()
    (root / "img_align_celeba" / "000004.jpg").unlink()
    with pytest.raises(FileNotFoundError, match="000004.jpg: image missing"):
        open_photo_set("celeba", root)
    assert len(open_photo_set("celeba", root, on_corrupt="skip")) == 5


def test_reads_folder_per_identity_with_an_identity_split(tmp_path):
    root = write_photo_folders(tmp_path / "people", identities=6, photos_per_identity=3)
    photos = open_photo_set("folders", root, val_fraction=0.34, split_seed=1)
    assert len(photos) == 18 and photos.points is None and photos.files[0].parent.name == "person_00"
    np.testing.assert_array_equal(photos.identities, np.repeat(np.arange(6), 3))
    train, val = (set(photos.identities[photos.splits == s]) for s in ("train", "val"))
    assert len(val) == 2 and len(train) == 4 and not train & val
    assert (root / "identity_split.json").is_file()
    assert (open_photo_set("folders", root, val_fraction=0.34, split_seed=1).splits == photos.splits).all()


def test_folder_landmarks_csv_and_square_check(tmp_path):
    root = write_photo_folders(tmp_path / "people", identities=2, photos_per_identity=2, size=40, landmarks=True)
    photos = open_photo_set("folders", root)
    np.testing.assert_allclose(photos.points[0], TEMPLATE * 36 + 2, atol=1e-3)
    (root / "landmarks.csv").unlink()
    Image.new("RGB", (40, 30)).save(root / "person_01" / "photo_0.jpg")
    dataset = PhotoDataset(open_photo_set("folders", root), range(4), 32)
    assert dataset[0]["image"].shape == (3, 32, 32)
    with pytest.raises(ValueError, match=r"person_01/photo_0.jpg: 40x30 photo without landmarks"):
        dataset[2]


def test_reads_our_synthetic_photo_set(synthetic):
    photos = open_photo_set("synthetic", synthetic, val_fraction=0.25)
    assert len(photos) == 8 and photos.points.shape == (8, 5, 2)
    np.testing.assert_array_equal(photos.identities, np.repeat(np.arange(4), 2))
    np.testing.assert_array_equal(photos.parameters, np.load(synthetic / "parameters.npy"))
    assert (photos.splits == "val").sum() == 2


def test_corrupt_photo_raises_with_its_name_or_is_replaced_and_logged(tmp_path, caplog):
    root = write_celeba(tmp_path / "celeba", identities=3, photos_per_identity=3)
    bad = root / "img_align_celeba" / "000002.jpg"
    bad.write_bytes(bad.read_bytes()[:200])  # truncated JPEG
    photos = open_photo_set("celeba", root)
    dataset = PhotoDataset(photos, np.arange(len(photos)), 32)
    with pytest.raises(ValueError, match="000002.jpg: cannot decode image"):
        dataset[1]
    skipping = PhotoDataset(photos, np.arange(len(photos)), 32, on_corrupt="skip")
    with caplog.at_level(logging.WARNING):
        item = skipping[1]
    assert item["identity"] == photos.identities[1] and item["index"] != 1 and skipping.skipped == 1
    assert "000002.jpg: cannot decode image" in caplog.text and "1 skipped" in caplog.text


# ---------------------------------------------------------------------------------------------- alignment


def test_alignment_puts_celeba_landmarks_on_the_template(tmp_path):
    """Dots drawn at the landmarks of a CelebA file land within 1 px of the template (64 px output)."""
    root = write_celeba(tmp_path / "celeba", identities=2, photos_per_identity=1)
    points = np.round(TEMPLATE * 200).astype(int) - [11, 0]  # integer pixel indices, a similarity image of the template
    lines = (root / "list_landmarks_align_celeba.txt").read_text().splitlines()
    lines[2] = "000001.jpg " + " ".join(str(v) for v in points.ravel())
    (root / "list_landmarks_align_celeba.txt").write_text("\n".join(lines) + "\n")
    image = np.full((218, 178, 3), 20, np.uint8)
    for x, y in points:
        image[y - 3 : y + 4, x - 3 : x + 4] = 255
    Image.fromarray(image).save(root / "img_align_celeba" / "000001.jpg", quality=98)
    aligned = PhotoDataset(open_photo_set("celeba", root), [0], 64)[0]["image"].permute(1, 2, 0).numpy()
    expected = TEMPLATE * 64 - 0.5  # template fractions -> pixel indices
    found = np.array([blob_centre(aligned, e, radius=3) for e in expected])
    assert np.abs(found - expected).max() < 1.0, found - expected


def test_alignment_undoes_rotation_scale_and_shift_to_subpixel():
    """Gaussian blobs at points a rotated, scaled, shifted template: after alignment on the template (128 px)."""
    angle, scale, shift = np.deg2rad(12), 2.1, np.array([31.0, 17.0])
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    points = TEMPLATE * 128 @ (scale * rotation).T + shift  # continuous coordinates, pixel centres at +0.5
    ys, xs = np.mgrid[0:400, 0:400] + 0.5
    image = sum(np.exp(-((xs - x) ** 2 + (ys - y) ** 2) / (2 * 3.0**2)) for x, y in points)
    image = np.repeat((20 + 230 * image / image.max()).astype(np.uint8)[..., None], 3, -1)
    aligned = align_to_template(image, points, 128)
    expected = TEMPLATE * 128 - 0.5
    found = np.array([blob_centre(aligned, e, radius=3) for e in expected])
    assert np.abs(found - expected).max() < 0.25, found - expected


def test_augmentation_is_configurable_and_seeded():
    assert build_augmentation(None) is None and build_augmentation(False) is None
    off = ("colour", "hue", "blur", "noise", "jpeg", "scale", "rotate", "shift")
    assert build_augmentation(dict.fromkeys(off, 0)) is None
    with pytest.raises(ValueError, match=r"augment: unknown keys \['sharpen'\]"):
        build_augmentation({"sharpen": 1})
    names = [type(t).__name__ for t in build_augmentation({"flip": True, "jpeg": None})]
    assert "HorizontalFlip" in names and "ImageCompression" not in names
    augment = build_augmentation({"p": 1.0})
    image = np.random.default_rng(0).integers(0, 255, (32, 32, 3), dtype=np.uint8)
    runs = []
    for seed in (5, 5, 6):
        augment.set_random_seed(seed)
        runs.append(augment(image=image)["image"])
    assert np.array_equal(runs[0], runs[1]) and not np.array_equal(runs[0], runs[2])


# ------------------------------------------------------------------------------------------------ sampler


def draw(sampler, epoch):
    sampler.set_epoch(epoch)
    return list(sampler)


def test_sampler_gives_p_identities_times_k_photos(caplog):
    identities = np.repeat(np.arange(20), 3)
    identities = np.append(identities, [20])  # one person with a single photo: skipped and counted
    with caplog.at_level(logging.INFO):
        sampler = IdentityBatchSampler(identities, identities_per_batch=4, photos_per_identity=2, seed=3)
    assert "1 of 21 identities have fewer than 2 photos" in caplog.text
    batches = draw(sampler, 0)
    assert len(batches) == len(sampler) == 5
    seen = []
    for batch in batches:
        positions = [p for p, _ in batch]
        people = identities[positions].reshape(4, 2)  # K photos of one person are adjacent
        assert (people[:, 0] == people[:, 1]).all() and len(set(people[:, 0])) == 4
        assert len(set(positions)) == 8
        seen += list(people[:, 0])
    assert sorted(seen) == list(range(20))  # each eligible person once per pass


def test_sampler_shards_identities_by_rank():
    identities = np.repeat(np.arange(23), 2)
    ranks = [IdentityBatchSampler(identities, 3, 2, seed=1, num_replicas=2, rank=r) for r in (0, 1)]
    for epoch in (0, 1):
        batches = [draw(sampler, epoch) for sampler in ranks]
        assert len(batches[0]) == len(batches[1]) == 23 // 6
        people = [{identities[p] for batch in rank for p, _ in batch} for rank in batches]
        assert not people[0] & people[1] and len(people[0]) == len(people[1]) == 9
        seeds = [{s for batch in rank for _, s in batch} for rank in batches]
        assert not seeds[0] & seeds[1]


def test_sampler_order_is_a_function_of_seed_and_epoch():
    identities = np.repeat(np.arange(12), 4)
    a, b = IdentityBatchSampler(identities, 3, 2, seed=7), IdentityBatchSampler(identities, 3, 2, seed=7)
    assert draw(a, 2) == draw(b, 2)
    assert draw(a, 1) != draw(b, 2)
    # A restart within one epoch (the shorter side of a max_size_cycle loader) draws afresh, reproducibly.
    first, second = draw(a, 4), draw(a, 4)
    assert first != second and draw(b, 4) == first and draw(b, 4) == second
    # The trainer's epoch wins over set_epoch (Lightning's count runs ahead after a resume).
    c = IdentityBatchSampler(identities, 3, 2, seed=7, trainer=SimpleNamespace(current_epoch=2))
    assert draw(c, 9) == draw(IdentityBatchSampler(identities, 3, 2, seed=7), 2)
    fixed = IdentityBatchSampler(identities, 3, 2, seed=7, shuffle=False)
    assert draw(fixed, 0) == draw(fixed, 0) == draw(fixed, 5)


def test_sampler_refuses_too_few_identities():
    with pytest.raises(ValueError, match="5 identities with >= 2 photos, fewer than one batch of 3 per process x 2"):
        IdentityBatchSampler(np.repeat(np.arange(5), 2), 3, 2, num_replicas=2)


# ----------------------------------------------------------------------------------------------- DataModule


def test_combined_batch_keys_shapes_and_dtypes(tmp_path):
    target = write_screenshot_set(tmp_path / "target", count=20, size=32)
    source = write_celeba(tmp_path / "celeba", identities=8, photos_per_identity=3)
    dm = datamodule(target, {"kind": "celeba", "root": str(source), "identities_per_batch": 2})
    dm.prepare_data()
    dm.setup("fit")
    for loader in (dm.train_dataloader(), dm.val_dataloader()):
        assert isinstance(loader, CombinedLoader) and loader._mode == "max_size_cycle"
        batch = dm.on_after_batch_transfer(first_batch(loader), 0)
        assert set(batch) == {"target", "source"}
        assert batch["target"]["parameters"].shape == (4, 267) and batch["target"]["image"].shape == (4, 3, 32, 32)
        source_batch = batch["source"]
        assert set(source_batch) == {"image", "identity", "parameters", "index"}
        assert source_batch["image"].shape == (4, 3, 32, 32) and source_batch["image"].dtype == torch.float32
        assert source_batch["image"].min() >= 0.0 and source_batch["image"].max() <= 1.0
        assert source_batch["identity"].dtype == torch.int64 and source_batch["index"].dtype == torch.int64
        assert source_batch["parameters"].shape == (4, 267) and source_batch["parameters"].isnan().all()
        people = source_batch["identity"].view(2, 2)
        assert (people[:, 0] == people[:, 1]).all() and people[0, 0] != people[1, 0]
    loader = dm.train_dataloader()
    assert len(list(loader)) == max(16 // 4, 5 // 2)  # max_size_cycle: the longer side
    val_people = {int(i) for i in first_batch(dm.val_dataloader())["source"]["identity"]}
    assert val_people == {135, 142}  # CelebA's own val partition
    preview = dm.preview_batch(3)
    assert preview["source"]["image"].shape == (3, 3, 32, 32) and preview["source"]["image"].dtype == torch.float32
    assert preview["target"]["image"].dtype == torch.float32
    assert dm.state_dict()["source_kind"] == "celeba"


def test_synthetic_source_carries_ground_truth_and_can_be_rendered(tmp_path):
    target = write_screenshot_set(tmp_path / "target", count=20, size=32)
    root = tmp_path / "photos"
    dm = datamodule(
        target,
        {
            "kind": "synthetic",
            "root": str(root),
            "identities_per_batch": 2,
            "val_fraction": 0.25,
            "generate": {"count": 12, "size": 32, "renders_per_identity": 2},
        },
    )
    dm.prepare_data()  # renders the missing set
    dm.setup("fit")
    batch = first_batch(dm.train_dataloader())["source"]
    np.testing.assert_array_equal(batch["parameters"].numpy(), np.load(root / "parameters.npy")[batch["index"].numpy()])
    assert batch["image"].dtype == torch.uint8 and batch["image"].shape == (4, 3, 32, 32)


def test_folder_source_with_world_size_checks(tmp_path):
    target = write_screenshot_set(tmp_path / "target", count=16, size=16)
    people = write_photo_folders(tmp_path / "people", identities=10, photos_per_identity=2, size=24)
    source = {"kind": "folders", "root": str(people), "identities_per_batch": 2, "val_fraction": 0.4}
    dm = datamodule(target, source, batch_size=6)
    dm.trainer = SimpleNamespace(world_size=4, global_rank=0)
    with pytest.raises(ValueError, match="batch_size=6 is the global batch.*world_size=4"):
        dm.setup("fit")
    dm.hparams.batch_size = 8
    with pytest.raises(ValueError, match=r"people, train split: 6 identities .* batch of 2 per process x 4 processes"):
        dm.setup("fit")
    dm = datamodule(target, source, batch_size=4)
    connector = SimpleNamespace(use_distributed_sampler=True)
    dm.trainer = SimpleNamespace(world_size=2, global_rank=1, current_epoch=0, _accelerator_connector=connector)
    dm.setup("fit")
    assert dm.batch_size_per_device == 2
    with pytest.raises(ValueError, match="use_distributed_sampler: false"):
        dm.train_dataloader()
    connector.use_distributed_sampler = False
    batch = first_batch(dm.train_dataloader())
    assert batch["target"]["image"].shape[0] == 2 and batch["source"]["image"].shape == (4, 3, 16, 16)


def test_source_config_errors_name_the_key(tmp_path):
    target = write_screenshot_set(tmp_path / "target", count=8, size=16)
    with pytest.raises(ValueError, match=r"data.source: unknown keys \['batch'\]"):
        datamodule(target, {"kind": "celeba", "root": "x", "batch": 3})
    with pytest.raises(ValueError, match="data.source needs 'root'"):
        datamodule(target, {"kind": "celeba"})
    with pytest.raises(ValueError, match="kind must be one of"):
        datamodule(target, {"kind": "lfw", "root": str(tmp_path)})


class RecordSource(L.LightningModule):
    """Consumes the combined batch; remembers the source rows of every training step per epoch."""

    def __init__(self):
        super().__init__()
        self.layer = torch.nn.Linear(3, 1)
        self.rows: dict[int, list[int]] = {}

    def training_step(self, batch, batch_idx):
        self.rows.setdefault(self.current_epoch, []).extend(batch["source"]["index"].tolist())
        images = torch.cat([batch["target"]["image"], batch["source"]["image"]])
        return self.layer(images.mean((2, 3))).mean()

    def validation_step(self, batch, batch_idx):
        assert set(batch) == {"target", "source"} and batch["source"]["image"].dtype == torch.float32

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.01)


def test_trainer_fit_and_exact_resume(tmp_path):
    """Under a real Trainer the combined batches arrive, and a run resumed at an epoch end draws the same photos."""
    target = write_screenshot_set(tmp_path / "target", count=20, size=16)
    people = write_photo_folders(tmp_path / "people", identities=12, photos_per_identity=3, size=16)
    source = {"kind": "folders", "root": str(people), "identities_per_batch": 3, "val_fraction": 0.25}
    make = functools.partial(datamodule, target, source)  # 9 train people: 3 photo batches cycle under 4 target ones
    trainer_args = dict(
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
        default_root_dir=tmp_path,
        limit_val_batches=1,
        num_sanity_val_steps=1,
    )
    L.seed_everything(0)
    whole = RecordSource()
    L.Trainer(max_epochs=3, **trainer_args).fit(whole, make())
    assert len(whole.rows[0]) == 4 * 6 and whole.rows[0] != whole.rows[1]  # 4 batches of 3 people x 2 photos
    assert whole.rows[0][18:] != whole.rows[0][:6]  # the 4th batch starts a second pass: a fresh draw
    L.seed_everything(0)
    first = RecordSource()
    trainer = L.Trainer(max_epochs=1, **trainer_args)
    trainer.fit(first, make())
    trainer.save_checkpoint(tmp_path / "epoch0.ckpt")
    L.seed_everything(0)
    resumed = RecordSource()
    L.Trainer(max_epochs=3, **trainer_args).fit(resumed, make(), ckpt_path=tmp_path / "epoch0.ckpt")
    assert first.rows[0] == whole.rows[0] and resumed.rows[1] == whole.rows[1] and resumed.rows[2] == whole.rows[2]


DDP_SCRIPT = """
import json, sys
import lightning as L
import torch
sys.path[:0] = [sys.argv[4], sys.argv[4] + "/tests"]
from datamodules import CrossDomainDataModule
from test_source_data import RecordSource

class RecordRanks(RecordSource):
    def on_fit_start(self):
        self.seen = {"train_people": [], "train_targets": [], "val_people": []}

    def training_step(self, batch, batch_idx):
        self.seen["train_people"].append(batch["source"]["identity"].tolist())
        self.seen["train_targets"].append(batch["target"]["index"].tolist())
        return super().training_step(batch, batch_idx)

    def validation_step(self, batch, batch_idx):
        super().validation_step(batch, batch_idx)
        self.seen["val_people"].append(batch["source"]["identity"].tolist())

    def on_fit_end(self):
        with open(f"{sys.argv[3]}/rank{self.global_rank}.json", "w") as handle:
            json.dump(self.seen, handle)

source = {"kind": "folders", "root": sys.argv[2], "identities_per_batch": 2, "val_fraction": 0.25}
data = CrossDomainDataModule(sys.argv[1], batch_size=4, num_workers=0, pin_memory=False, source=source)
L.seed_everything(0)
trainer = L.Trainer(accelerator="cpu", devices=2, strategy="ddp", use_distributed_sampler=False, max_epochs=1,
                    logger=False, enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                    num_sanity_val_steps=0)
trainer.fit(RecordRanks(), data)
"""


@pytest.mark.slow
def test_ddp_two_cpu_processes_get_disjoint_people(tmp_path, run_cli):
    """A real 2-process gloo DDP fit: equal step counts, disjoint people and target rows per step, val sharded too."""
    import json
    from pathlib import Path

    repo = Path(__file__).resolve().parents[1]
    target = write_screenshot_set(tmp_path / "target", count=24, size=16)
    people = write_photo_folders(tmp_path / "people", identities=16, photos_per_identity=2, size=16)
    script = tmp_path / "ddp_fit.py"
    script.write_text(DDP_SCRIPT)
    run_cli(script, target, people, tmp_path, repo, cwd=tmp_path, timeout=300, repo_on_path=True)
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert len(ranks[0]["train_people"]) == len(ranks[1]["train_people"]) > 0
    for a, b in zip(ranks[0]["train_people"], ranks[1]["train_people"]):
        assert len(a) == len(b) == 4 and not set(a) & set(b)
    for a, b in zip(ranks[0]["train_targets"], ranks[1]["train_targets"]):
        assert len(a) == len(b) == 2 and not set(a) & set(b)
    val = [{p for batch in rank["val_people"] for p in batch} for rank in ranks]
    assert val[0] and val[1] and not val[0] & val[1]


def test_source_is_a_dataclass_the_command_line_validates_naming_the_key(tmp_path):
    from jsonargparse import ArgumentParser

    parser = ArgumentParser(exit_on_error=False)
    parser.add_class_arguments(CrossDomainDataModule, "data")
    for bad, key in (("kind: lfw", "kind"), ("kind: celeba, on_corrupt: ignore", "on_corrupt")):
        with pytest.raises(Exception, match=rf'"data.source"(.|\n)*"{key}"(.|\n)*Got value'):
            parser.parse_args(["--data.target_root=x", f"--data.source={{{bad}, root: x}}"])
    config = parser.parse_args(["--data.target_root=x", "--data.source={kind: folders, root: x, on_corrupt: skip}"])
    source = parser.instantiate(config).data.source
    assert source == PhotoSource("folders", "x", on_corrupt="skip")
    with pytest.raises(ValueError, match="data.source.on_corrupt must be one of"):
        PhotoSource("folders", "x", on_corrupt="ignore")  # from Python too


def test_a_source_given_as_the_dataclass_is_saved_as_plain_data(tmp_path):
    target = write_screenshot_set(tmp_path / "target", count=8, size=16)
    dm = datamodule(target, PhotoSource("folders", str(tmp_path), identities_per_batch=2))
    assert dm.source.identities_per_batch == 2 and type(dm.hparams.source) is dict
    assert dm.hparams.source["kind"] == "folders" and dm.hparams.source["identities_per_batch"] == 2
    assert datamodule(target, dict(dm.hparams.source)).source == dm.source  # as a checkpoint gives it back
