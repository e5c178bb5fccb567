"""ParameterReaderModule and the readers of models/readers.py: shapes, gradients, a tiny overfit, the held-out ratio
against a hand-computed value, and checkpoints that rebuild the reader alone."""

from __future__ import annotations

import functools

import numpy as np
import pytest
import torch
from fakes import fake_parameters, fake_render
from lightning.pytorch import Trainer
from torch import nn
from torch.utils.data import DataLoader

from lightning_modules.reader import ParameterReaderModule
from models.checkpoints import load_network
from models.readers import EncoderRegressorReader, TimmReader
from models.regressor import Regressor
from models.vqvae2 import VQVAE2, Quantizer

SIZE = 32


def encoder_regressor(quantised: bool) -> EncoderRegressorReader:
    encoder = VQVAE2(
        image_size=SIZE,
        channel=16,
        n_res_block=1,
        n_res_channel=8,
        embed_dim=8,
        n_embed=16,
        decay=0.8,
        dead_code_threshold=0.5,
    )
    return EncoderRegressorReader(encoder, Regressor(image_size=SIZE, in_channels=16), quantised)


READERS = {
    "timm_resnet18": lambda: TimmReader("resnet18"),
    "encoder_regressor": functools.partial(encoder_regressor, True),
    "unquantised": functools.partial(encoder_regressor, False),
}


def batches(*batch: dict) -> DataLoader:
    """These batches, as they are, in a DataLoader."""
    return DataLoader(list(batch), batch_size=None)


def fake_batch(count: int = 8, seed: int = 0) -> dict:
    """Screenshots of fakes.fake_render (a disc whose colour and place follow the first parameters)."""
    parameters = fake_parameters(count, seed)
    images = np.stack([fake_render(row, SIZE) for row in parameters])
    return {
        "image": torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255,
        "parameters": torch.from_numpy(parameters),
    }


@pytest.mark.parametrize("name", READERS)
def test_every_trainable_parameter_gets_a_gradient(name):
    torch.manual_seed(0)
    module = ParameterReaderModule(READERS[name]()).train()
    loss, predicted = module.model_step(fake_batch(4))
    loss.backward()
    assert predicted.shape == (4, 267) and torch.isfinite(loss)
    assert predicted.abs().max() <= 2.5
    trainable = [(n, p) for n, p in module.named_parameters() if p.requires_grad]
    assert trainable
    assert [n for n, p in trainable if p.grad is None or not torch.isfinite(p.grad).all()] == []


def test_codebooks_are_bypassed_only_when_asked():
    assert any(isinstance(m, Quantizer) for m in encoder_regressor(True).modules())
    assert not any(isinstance(m, Quantizer) for m in encoder_regressor(False).modules())


def test_the_commitment_loss_adds_in_with_its_weight():
    torch.manual_seed(0)
    net, batch = encoder_regressor(True).train(), fake_batch(4)
    module = ParameterReaderModule(net, auxiliary_weight=0.0)
    weighted = ParameterReaderModule(net, auxiliary_weight=0.5)
    torch.manual_seed(1)
    plain, _ = module.model_step(batch)
    torch.manual_seed(1)
    total, predicted = weighted.model_step(batch)
    auxiliary = net(batch["image"]).loss  # the EMA codebooks moved a little: compare loosely
    assert auxiliary > 0
    assert torch.allclose(total - plain, 0.5 * auxiliary, rtol=0.2)
    assert predicted.shape == (4, 267)


def test_tiny_overfit_drives_the_loss_down():
    torch.manual_seed(0)
    module = ParameterReaderModule(TimmReader("resnet18"), optimizer=functools.partial(torch.optim.Adam, lr=1e-3))
    optimizer, batch, losses = module.configure_optimizers(), fake_batch(8), []
    module.train()
    for _ in range(30):
        loss, _ = module.model_step(batch)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
    assert all(np.isfinite(losses)) and np.mean(losses[-3:]) < 0.5 * losses[0], losses


class ImageMeanReader(nn.Module):
    """A reader with a known answer: every parameter is `scale` times the image's mean; the bare tensor only."""

    def __init__(self, scale: float = 3.0) -> None:
        super().__init__()
        self.scale = scale
        self.bias = nn.Parameter(torch.zeros(()))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return (self.scale * images.mean((1, 2, 3)) + self.bias)[:, None].expand(-1, 267)


def test_val_rmse_ratio_is_the_rmse_over_the_neutral_faces_over_every_held_out_row():
    held_out = [fake_batch(3, seed=1), fake_batch(5, seed=2)]  # unequal sizes: pooled over rows, not per batch
    predicted = np.concatenate([3.0 * b["image"].mean((1, 2, 3)).numpy()[:, None].repeat(267, 1) for b in held_out])
    truth = np.concatenate([b["parameters"].numpy() for b in held_out])
    expected = np.sqrt(((predicted - truth) ** 2).mean() / (truth**2).mean())
    trainer = Trainer(accelerator="cpu", logger=False, enable_checkpointing=False, enable_progress_bar=False)
    (scores,) = trainer.validate(ParameterReaderModule(ImageMeanReader()), batches(*held_out), verbose=False)
    assert scores["val/rmse_ratio"] == pytest.approx(expected, rel=1e-5)
    assert scores["val/loss"] == pytest.approx(((predicted - truth) ** 2).mean() / 2.5**2, rel=1e-5)


def test_frozen_parts_are_left_out_of_the_optimizer():
    net = TimmReader("resnet18")
    for parameter in net.net.parameters():
        parameter.requires_grad_(False)
    net.net.get_classifier().requires_grad_(True)
    (group,) = ParameterReaderModule(net).configure_optimizers().param_groups
    assert {id(p) for p in group["params"]} == {id(p) for p in net.net.get_classifier().parameters()}


def test_a_checkpoint_rebuilds_the_reader_alone(tmp_path):
    torch.manual_seed(0)
    module = ParameterReaderModule(encoder_regressor(False))
    trainer = Trainer(
        accelerator="cpu", max_steps=1, logger=False, enable_progress_bar=False, default_root_dir=tmp_path
    )
    trainer.fit(module, batches(fake_batch(4)), batches(fake_batch(4, seed=1)))
    trainer.save_checkpoint(tmp_path / "last.ckpt")
    net, images = load_network(tmp_path / "last.ckpt", "net"), fake_batch(2, seed=3)["image"]
    with torch.no_grad():
        assert torch.equal(net(images).parameters, module.eval()(images).parameters)
    reloaded = ParameterReaderModule.load_from_checkpoint(tmp_path / "last.ckpt").eval()
    assert isinstance(reloaded.net, EncoderRegressorReader) and not reloaded.net.quantised


class SizeReporter(nn.Module):
    """A reader whose every parameter is the picture's side length (to see the size it was given) plus an offset."""

    def __init__(self, offset: float) -> None:
        super().__init__()
        self.offset = offset

    def forward(self, images: torch.Tensor):
        from models.readers import ReaderOutput

        side = torch.full((len(images), 267), float(images.shape[-1]))
        return ReaderOutput(side + self.offset, torch.tensor(self.offset))


@pytest.mark.parametrize("sizes, expected_side", [((64, 128), 96.0), ((None, 32), 40.0), ((48, 48), 48.0)])
def test_the_mean_of_readers_averages_members_that_each_read_at_their_own_size(sizes, expected_side):
    from models.readers import MeanOfReaders

    ensemble = MeanOfReaders([SizeReporter(0.0), SizeReporter(2.0)], sizes)
    output = ensemble(torch.rand(3, 3, 48, 48))
    torch.testing.assert_close(output.parameters, torch.full((3, 267), expected_side + 1.0))
    assert output.loss.item() == 2.0


def test_the_mean_of_real_readers_is_the_mean_of_their_parameters():
    from models.readers import MeanOfReaders

    torch.manual_seed(0)
    members = [encoder_regressor(True).eval(), encoder_regressor(False).eval()]
    images = fake_batch(4)["image"]
    with torch.no_grad():
        expected = (members[0](images).parameters + members[1](images).parameters) / 2
        torch.testing.assert_close(MeanOfReaders(members, [SIZE, SIZE])(images).parameters, expected)


@pytest.mark.parametrize("readers, sizes", [([], []), ([nn.Identity()], [64, 128])])
def test_the_mean_of_readers_refuses_a_size_list_that_does_not_match(readers, sizes):
    from models.readers import MeanOfReaders

    with pytest.raises(ValueError, match="one image size per reader"):
        MeanOfReaders(readers, sizes)
