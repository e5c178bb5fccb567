"""The regressor R (models/regressor.py): Table 1 shapes at every size, gradients, output range."""

from __future__ import annotations

import pytest
import torch

from models.regressor import Regressor, RegressorOutput

# Per layer (channels, side) for each image size: Table 1 at 256 px, strides dropped from the front below.
LAYER_SHAPES = {
    256: [(32, 32), (64, 16), (128, 8), (256, 4), (256, 2)],
    128: [(32, 32), (64, 16), (128, 8), (256, 4), (256, 2)],
    64: [(32, 16), (64, 16), (128, 8), (256, 4), (256, 2)],
}


@pytest.mark.parametrize("size", [64, 128, 256])
def test_table1_shapes(size):
    model = Regressor(image_size=size)
    x = torch.randn(2, 128, size // 4, size // 4)
    shapes = []
    for layer in model.layers:
        x = layer(x)
        shapes.append((x.shape[1], x.shape[2]))
    assert shapes == LAYER_SHAPES[size]
    f, p = model(torch.randn(2, 128, size // 4, size // 4))
    assert f.shape == (2, 1024) and p.shape == (2, 267)


@pytest.mark.parametrize("norm", ["group", "batch", "none"])
def test_every_parameter_gets_a_gradient(norm):
    torch.manual_seed(0)
    model = Regressor(image_size=64, norm=norm)
    f, p = model(torch.randn(4, 128, 16, 16))
    (p.pow(2).mean() + f.mean()).backward()
    for name, param in model.named_parameters():
        assert param.grad is not None and param.grad.abs().sum() > 0, name
        assert torch.isfinite(param.grad).all(), name


def test_parameters_stay_in_the_game_range():
    model = Regressor(image_size=64)
    with torch.no_grad():
        model.head.weight.mul_(1e3)  # saturate the tanh
    p = model(torch.randn(8, 128, 16, 16)).parameters
    assert p.abs().max() <= 2.5 and p.abs().max() > 2.0


def test_an_untrained_regressor_predicts_close_to_the_neutral_face():
    torch.manual_seed(0)
    p = Regressor(image_size=64)(torch.randn(8, 128, 16, 16)).parameters
    assert p.abs().mean() < 0.05 and p.std(0).mean() > 0  # near p = 0, yet input-dependent


@pytest.mark.parametrize("size", [100, 2, 512])
def test_unsupported_sizes_are_errors(size):
    with pytest.raises(ValueError, match="image_size"):
        Regressor(image_size=size)


def test_wrong_feature_map_is_an_error():
    with pytest.raises(ValueError, match="expects"):
        Regressor(image_size=128)(torch.randn(1, 128, 16, 16))


def test_the_output_is_named_and_still_a_pair():
    output = Regressor(image_size=64)(torch.randn(2, 128, 16, 16))
    assert isinstance(output, RegressorOutput) and output._fields == ("features", "parameters")
    assert output.features is output[0] and output.parameters is output[1]
    f, p = output  # unpacks like the tuple it was
    assert f.shape == (2, 1024) and p.shape == (2, 267)
