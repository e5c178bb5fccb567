"""The imitator network: Table 2 shapes at every output size, gradients everywhere, no NaN."""

import pytest
import torch

from models.imitator import TABLE2_CHANNELS, Imitator


@pytest.mark.parametrize("image_size, num_blocks", [(64, 4), (128, 5), (256, 6)])
def test_table2_shapes(image_size, num_blocks):
    net = Imitator(image_size=image_size)
    shapes = []
    x = torch.empty(2, 267).uniform_(-2.5, 2.5)[:, :, None, None]
    for layer in net.layers:
        x = layer(x)
        if isinstance(layer, (torch.nn.ReLU, torch.nn.Sequential)):  # the end of L1, and of each later block
            shapes.append(tuple(x.shape[1:]))
    expected = [(c, 4 * 2**i, 4 * 2**i) for i, c in enumerate(TABLE2_CHANNELS[:num_blocks])]
    assert shapes == expected  # Table 2's L1.. widths from the input side, sizes doubling from 4x4
    assert tuple(x.shape) == (2, 3, image_size, image_size)
    assert x.min() >= 0.0 and x.max() <= 1.0  # sigmoid output: images in [0, 1]


def test_table2_exact_at_256():
    shapes, x = [], torch.zeros(1, 267, 1, 1)
    for layer in Imitator(image_size=256).eval().layers:
        x = layer(x)
        if not isinstance(layer, (torch.nn.BatchNorm2d, torch.nn.ConvTranspose2d)):
            shapes.append(tuple(x.shape[1:]))
    assert shapes == [
        (256, 4, 4),
        (256, 8, 8),
        (256, 16, 16),
        (128, 32, 32),
        (64, 64, 64),
        (32, 128, 128),
        (3, 256, 256),
    ]


@pytest.mark.parametrize("image_size", [64, 128, 256])
def test_every_parameter_gets_a_gradient(image_size):
    net = Imitator(image_size=image_size)
    out = net(torch.empty(2, 267).uniform_(-2.5, 2.5))
    out.mean().backward()
    trainable = [(name, p) for name, p in net.named_parameters() if p.requires_grad]
    assert trainable
    for name, p in trainable:
        assert p.grad is not None, name
        assert torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, name
    assert torch.isfinite(out).all()


def test_rejects_unknown_size():
    with pytest.raises(ValueError, match="64, 128 or 256"):
        Imitator(image_size=96)
