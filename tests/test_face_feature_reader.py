"""FaceFeatureReader (not in the paper, issue 13 item 2): frozen real-face features and a trainable head; the colour
regions; a photo-style set read as the target side; experiments/features/ through the LightningCLI."""

from __future__ import annotations

import functools
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from lightning.pytorch import LightningDataModule, LightningModule

from datamodules.cross_domain import CrossDomainDataModule
from datamodules.photo_sets import read_synthetic
from datamodules.photos import AlignedScreenshotDataset, PhotoDataset
from datamodules.screenshots import open_screenshot_set
from lightning_modules.cli import LikenessCLI
from lightning_modules.reader import ParameterReaderModule
from models.checkpoints import load_network
from models.face_features import GROUP_WIDTHS, GROUPS, REGIONS, FaceFeatures, colour_sample_weights, rgb_to_lab
from models.readers import FaceFeatureReader

REPO = Path(__file__).resolve().parents[1]
CONFIGS = REPO / "experiments" / "features"
OVERLAYS = {"all": GROUPS, "mesh": ("mesh",), "identity": ("identity",), "colour": ("colour",)}


@pytest.fixture(scope="module")
def photo_set(tmp_path_factory) -> Path:
    """12 photo-style renders at 64 px, one per identity, as experiments/features/base.yaml makes them."""
    from game.dataset import generate

    root = tmp_path_factory.mktemp("features") / "photo"
    return generate(root, 12, size=64, style="photo", seed=3, renders_per_identity=1, workers=1, progress=False)


@pytest.fixture(scope="module")
def pictures(photo_set) -> dict:
    """The photo set's 12 rows as the DataModule serves them: aligned, float [0, 1], with their parameters."""
    dataset = AlignedScreenshotDataset(open_screenshot_set(photo_set), range(12), 64)
    rows = [dataset[i] for i in range(12)]
    return {
        "image": torch.stack([row["image"] for row in rows]).float() / 255,
        "parameters": torch.stack([row["parameters"] for row in rows]),
    }


@functools.cache
def reader(groups: tuple[str, ...] = GROUPS, seed: int = 0) -> FaceFeatureReader:
    torch.manual_seed(seed)
    return FaceFeatureReader(list(groups), hidden=32)


def test_every_trainable_parameter_gets_a_gradient_and_the_frozen_nets_none(pictures):
    torch.manual_seed(0)
    net = FaceFeatureReader(hidden=32)
    module = ParameterReaderModule(net).train()
    assert not net.extractor.training and not any(m.training for m in net.extractor.modules())  # eval for good
    loss, predicted = module.model_step({**pictures, "image": pictures["image"].requires_grad_(False)})
    loss.backward()
    trainable = [(n, p) for n, p in module.named_parameters() if p.requires_grad]
    assert {n for n, _ in trainable} == {f"net.head.{n}" for n, _ in net.head.named_parameters()}
    assert [
        n for n, p in trainable if p.grad is None or not torch.isfinite(p.grad).all() or p.grad.abs().sum() == 0
    ] == []
    assert list(net.extractor.parameters()) == []  # frozen weights are buffers: nothing to receive a gradient
    assert all(not b.requires_grad for b in net.extractor.buffers())
    assert not any(m.training for m in net.extractor.modules())
    assert predicted.shape == (12, 267) and torch.isfinite(loss)


def test_output_shape_range_and_the_neutral_start(pictures):
    torch.manual_seed(0)
    net = FaceFeatureReader(hidden=32, dropout=0.0).train()
    with torch.no_grad():
        start = net(pictures["image"]).parameters  # the first training batch, standardised by its own statistics
        extreme = net.eval()(torch.rand(3, 3, 128, 128)).parameters  # any S
    assert start.shape == (12, 267) and extreme.shape == (3, 267)
    assert start.abs().max() < 0.1  # the neutral face, within 4% of the range
    net.head[-1].bias.data.fill_(50.0)  # saturated: still inside the range
    try:
        with torch.no_grad():
            saturated = net(pictures["image"]).parameters
    finally:
        net.head[-1].bias.data.zero_()
    assert saturated.abs().max() <= 2.5 and saturated.min() > 2.49


@pytest.mark.parametrize("name", OVERLAYS)
def test_each_feature_group_switch_sets_the_input_width(name, pictures):
    groups = OVERLAYS[name]
    net = reader(groups)
    width = sum(GROUP_WIDTHS[g] for g in groups)
    assert net.extractor.width == width == net.head[0].in_features
    assert net.extractor(pictures["image"][:2]).shape == (2, width)
    assert (net.extractor.geometry is None) == (groups == ("identity",))  # only the nets a group needs are built
    assert (net.extractor.identity is None) == ("identity" not in groups)
    assert GROUP_WIDTHS == {"mesh": 1404, "identity": 128, "colour": 30}


def test_unknown_or_empty_feature_groups_are_refused():
    for groups in (["mesh", "texture"], [], ["mesh", "mesh"]):
        with pytest.raises(ValueError, match="features must be distinct names among"):
            FaceFeatures(groups)


def test_standardisation_is_fitted_on_the_first_training_batches_then_fixed(pictures):
    torch.manual_seed(0)
    net = FaceFeatureReader(hidden=32, statistics_batches=2).train()
    images = pictures["image"]
    net(images[:6])
    net(images[6:])
    fitted = net.feature_sum.clone()
    net(images[:3])  # a third batch: the statistics stay
    assert torch.equal(net.feature_sum, fitted) and int(net.statistics_rows) == 12
    standardised = net.standardise(net.frozen_features(images))
    assert standardised.mean(0).abs().max() < 1e-4
    assert torch.allclose(standardised.std(0, unbiased=False), torch.ones(()), atol=1e-3)


def test_the_cache_gives_the_features_computed_afresh(pictures):
    net = reader()
    images = pictures["image"][:4]
    first = net.frozen_features(images)
    assert torch.equal(net.frozen_features(images[[2, 0]]), first[[2, 0]])  # from the cache
    assert torch.allclose(net.extractor(images), first)
    net.cache_rows = 0
    assert torch.allclose(net.frozen_features(images), first)
    net.cache_rows = 100_000


def test_tiny_overfit_drives_the_loss_down(pictures):
    torch.manual_seed(0)
    net = FaceFeatureReader(hidden=64, dropout=0.0)
    module = ParameterReaderModule(net, optimizer=functools.partial(torch.optim.Adam, lr=3e-3)).train()
    optimizer, losses = module.configure_optimizers(), []
    for _ in range(60):
        loss, _ = module.model_step(pictures)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
    assert all(np.isfinite(losses)) and np.mean(losses[-3:]) < 0.5 * losses[0], losses


def test_colour_regions_read_the_colour_placed_there():
    weights, regions = colour_sample_weights()
    assert weights.shape == (len(regions), 468) and set(regions) == set(REGIONS)
    assert np.allclose(weights.sum(1), 1.0)  # affine combinations: they move with the face
    lab = rgb_to_lab(torch.tensor([[1.0, 1.0, 1.0], [0.0, 0.0, 0.0], [1.0, 0.0, 0.0]]))
    assert torch.allclose(lab[:2], torch.tensor([[100.0, 0.0, 0.0], [0.0, 0.0, 0.0]]), atol=0.05)
    assert torch.allclose(lab[2], torch.tensor([53.24, 80.09, 67.20]), atol=0.2)  # sRGB red, the usual reference
    # A flat grey image reads the same colour in every region, with no spread.
    extractor = FaceFeatures(["colour"])
    points, _ = extractor.geometry.landmarks(torch.rand(1, 3, 64, 64))
    colour = extractor.colour(torch.full((1, 3, 64, 64), 0.5), points).view(5, 6)
    assert torch.allclose(colour[:, :3], rgb_to_lab(torch.full((3,), 0.5)) / 100, atol=1e-4)
    assert colour[:, 3:].abs().max() < 1e-2


def test_a_photo_style_set_is_read_as_the_target_side_aligned_by_its_points(photo_set, tmp_path):
    root = shutil.copytree(photo_set, tmp_path / "photo")  # the DataModule writes split.json into it
    data = CrossDomainDataModule(str(root), batch_size=4, image_size=64, val_fraction=0.25, num_workers=0)
    data.prepare_data()
    data.setup("fit")
    assert type(data.train_dataset) is AlignedScreenshotDataset and len(data.val_dataset) == 3
    photos = PhotoDataset(read_synthetic(root), np.arange(12), 64)  # the source side's alignment, no augmentation
    row = data.val_dataset[0]
    assert torch.equal(row["image"], photos[row["index"]]["image"])
    assert torch.equal(row["parameters"], photos[row["index"]]["parameters"])


def composed(name: str, *extra: str) -> LikenessCLI:
    configs = ["--config", str(CONFIGS / "base.yaml"), "--config", str(CONFIGS / f"{name}.yaml"), *extra]
    return LikenessCLI(
        LightningModule, LightningDataModule, subclass_mode_model=True, subclass_mode_data=True, run=False, args=configs
    )


@pytest.mark.parametrize("name", OVERLAYS)
def test_each_overlay_builds_its_reader(name):
    cli = composed(name)
    assert type(cli.model.net) is FaceFeatureReader and tuple(cli.model.net.features) == OVERLAYS[name]
    assert cli.config.run.name == f"features-{name}"
    generate = cli.datamodule.hparams.generate
    assert generate["style"] == "photo" and generate["seed"] not in (0, 1, 2)  # the demo's sets' seeds
    assert generate["renders_per_identity"] == 1  # nobody in both the train and the held-out rows


def test_fits_two_steps_through_the_cli_and_the_checkpoint_rebuilds_the_reader(photo_set, tmp_path, run_cli):
    root = shutil.copytree(photo_set, tmp_path / "photo")
    runs = tmp_path / "runs"
    args = ["--data.init_args.target_root", root, "--data.init_args.generate", "null", "--data.init_args.batch_size"]
    args += ["4", "--data.init_args.num_workers", "0", "--data.init_args.val_fraction", "0.25", "--run.root", runs]
    args += ["--trainer.max_steps", "2", "--trainer.limit_val_batches", "1", "--model.init_args.net.init_args.hidden"]
    args += ["16"]
    done = run_cli(
        "-m", "lightning_modules.cli", "fit", "--config", CONFIGS / "base.yaml", "--config", CONFIGS / "all.yaml", *args
    )
    checkpoint = runs / "features-all" / "version_0" / "checkpoints" / "last.ckpt"
    assert checkpoint.is_file(), done.stderr[-2000:]
    net = load_network(checkpoint, "net")
    assert int(net.statistics_batches_seen) == 2 and int(net.statistics_rows) == 8  # two training batches of 4
    with torch.no_grad():
        assert net(torch.rand(2, 3, 64, 64)).parameters.shape == (2, 267)


def test_the_cached_overlay_adds_the_feature_cache_to_any_group_overlay():
    from callbacks.feature_cache import FeatureCache

    cli = composed("mesh", "--config", str(CONFIGS / "cached.yaml"))
    (cache,) = [callback for callback in cli.trainer.callbacks if isinstance(callback, FeatureCache)]
    assert cache.path is None and tuple(cli.model.net.features) == ("mesh",)  # beside the training set
