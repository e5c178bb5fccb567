"""Shrinkage calibration: R scales p by its buffer in eval mode only; the callback fits the buffer in closed form."""

from types import SimpleNamespace

import pytest
import torch
from torch import nn

from callbacks.shrinkage import ShrinkageCalibration
from models.regressor import Regressor, RegressorOutput


def test_regressor_applies_its_shrinkage_in_eval_mode_only():
    regressor = Regressor(64)
    features = torch.randn(3, 128, 16, 16)
    regressor.shrinkage.fill_(0.5)
    raw = regressor.train()(features).parameters
    regressor.eval()
    assert torch.allclose(regressor(features).parameters, 0.5 * raw, atol=1e-6)
    assert torch.allclose(regressor(features, shrink=False).parameters, raw, atol=1e-6)
    assert torch.allclose(regressor.train()(features, shrink=True).parameters, 0.5 * raw, atol=1e-6)


def test_a_state_dict_from_before_the_buffer_loads_uncalibrated():
    old = {k: v for k, v in Regressor(64).state_dict().items() if k != "shrinkage"}
    regressor = Regressor(64)
    regressor.shrinkage.zero_()
    regressor.load_state_dict(old)  # strict
    assert torch.equal(regressor.shrinkage, torch.ones(267))


class PassThroughRegressor:
    """R's interface, answering its input: the raw prediction is whatever the 'image' was."""

    def __init__(self, num_parameters: int) -> None:
        self.num_parameters, self.shrinkage = num_parameters, torch.ones(num_parameters)

    def __call__(self, features: torch.Tensor, shrink: bool) -> RegressorOutput:
        assert shrink is False  # the factors are fitted to the raw output
        return RegressorOutput(features, features)


class RawIsTheImage(nn.Module):
    """Stands in for the RegressionModule: E passes the image on, R answers it, so the factors are known."""

    def __init__(self, num_parameters: int) -> None:
        super().__init__()
        self.regressor = PassThroughRegressor(num_parameters)
        self.logged = {}

    @property
    def device(self):
        return torch.device("cpu")

    def encoder(self, images):
        return SimpleNamespace(features=images)

    def log_dict(self, values):
        self.logged = values


def fit_factors(raw: torch.Tensor, truth: torch.Tensor) -> tuple[torch.Tensor, dict]:
    module = RawIsTheImage(raw.shape[1])
    dataset = [{"image": r, "parameters": t} for r, t in zip(raw, truth)]
    trainer = SimpleNamespace(
        sanity_checking=False,
        global_rank=0,
        world_size=1,
        datamodule=SimpleNamespace(val_dataset=dataset, on_after_batch_transfer=lambda b, i: b),
        strategy=SimpleNamespace(reduce=lambda x, reduce_op: x),
    )
    ShrinkageCalibration(batch_size=7, min_screenshots=1).on_validation_epoch_end(trainer, module)
    return module.regressor.shrinkage, module.logged


def test_factors_are_the_least_squares_slope_through_zero_clipped_to_zero_one():
    torch.manual_seed(0)
    truth = torch.empty(200, 4).uniform_(-2.5, 2.5)
    noise = torch.randn(200)
    raw = torch.stack(
        [
            truth[:, 0],  # read exactly: kept
            2 * truth[:, 1],  # twice too far: halved
            truth[:, 2] + noise,  # noisy: shrunk by the least-squares slope
            -truth[:, 3],
        ],
        1,
    )  # backwards: nothing kept
    factor, logged = fit_factors(raw, truth)
    expected = (raw[:, 2] * truth[:, 2]).sum() / raw[:, 2].pow(2).sum()
    assert factor[:2].tolist() == pytest.approx([1.0, 0.5])
    assert factor[2].item() == pytest.approx(expected.item()) and 0 < factor[2] < 1
    assert factor[3].item() == 0.0
    assert logged["calibration/mean_shrinkage"].item() == pytest.approx(factor.mean().item())


def test_sanity_check_leaves_the_factors_alone():
    module = RawIsTheImage(3)
    trainer = SimpleNamespace(sanity_checking=True)
    ShrinkageCalibration().on_validation_epoch_end(trainer, module)
    assert torch.equal(module.regressor.shrinkage, torch.ones(3))
