"""models.modes: the permanently-eval base and the eval-for-a-block context manager."""

import pytest
import torch
from torch import nn

from losses import Frozen
from models.face_detector import BlazeFaceDetector
from models.face_geometry import Deep3DCoefficients, LandmarkGeometry
from models.face_id import FrozenExtractor
from models.modes import AlwaysEval, evaluating
from models.tflite_graph import TFLiteNet


class Net(AlwaysEval):
    def __init__(self) -> None:
        super().__init__()
        self.norm, self.drop = nn.BatchNorm1d(4), nn.Dropout(0.5)


def test_always_eval_ignores_a_parents_train():
    parent = nn.Sequential(nn.Linear(4, 4), Net())
    parent.train()
    assert parent.training and parent[0].training
    assert not any(m.training for m in parent[1].modules())
    assert parent[1].train(True) is parent[1]


@pytest.mark.parametrize(
    "cls", [Frozen, FrozenExtractor, LandmarkGeometry, Deep3DCoefficients, BlazeFaceDetector, TFLiteNet]
)
def test_every_frozen_network_uses_the_one_mechanism(cls):
    assert issubclass(cls, AlwaysEval) and "train" not in vars(cls)


def test_evaluating_restores_each_submodule_exactly():
    model = nn.Sequential(nn.Linear(4, 4), nn.Dropout(0.5), Net())
    model.train()
    model[1].eval()  # a mixed tree: restored as it was, not by one .train(mode)
    before = [m.training for m in model.modules()]
    with evaluating(model):
        assert not any(m.training for m in model.modules())
    assert [m.training for m in model.modules()] == before


def test_evaluating_restores_the_modes_when_the_block_raises():
    first, second = nn.Linear(2, 2), nn.Dropout(0.5)
    second.eval()
    with pytest.raises(RuntimeError, match="boom"), evaluating(first, second):
        assert not first.training
        raise RuntimeError("boom")
    assert first.training and not second.training


def test_evaluating_switches_dropout_off_in_the_block():
    drop = nn.Dropout(0.5)
    x = torch.ones(100)
    with evaluating(drop):
        assert torch.equal(drop(x), x)
    assert drop.training
