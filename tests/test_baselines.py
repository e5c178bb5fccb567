"""The Table 3 baselines (eval/baselines): F2P's parameter search and FastF2P's translator, on tiny random nets."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from fakes import write_network_checkpoint
from torch import nn

from datamodules.split import make_split
from eval.baselines import ParameterEstimator, build_baseline, throughput
from eval.baselines.f2p import F2P, TemplateContent
from eval.baselines.fastf2p import FastF2P, Translator, save_translator, train_translator
from game.parameters import HIGH, NUM_PARAMETERS, sample_uniform
from models.checkpoints import load_network
from models.imitator import Imitator

SIZE = 64


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny nets run ~100x faster on one thread than on two OpenMP threads fighting over a shared CPU."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


class TinyFaceId(nn.Module):
    """A stand-in F_id with ordinary trainable-looking weights, so a leak of gradients would show."""

    embedding_dim = 16

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(3, 8, 5, 2, 2),
            nn.ReLU(),
            nn.Conv2d(8, 16, 3, 2, 1),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(4),
            nn.Flatten(),
            nn.Linear(16 * 16, self.embedding_dim),
        )

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.net(images)


def tiny_imitator(seed: int = 0) -> Imitator:
    """A 64 px imitator with random weights, batch norm included: with BN at its initial identity, every ReLU
    of the neutral face p = 0 sits exactly at 0, where no gradient flows (a trained imitator has shifts)."""
    torch.manual_seed(seed)
    imitator = Imitator(image_size=SIZE, channels=(32, 32, 16, 8))
    for module in imitator.modules():
        if isinstance(module, nn.BatchNorm2d):
            nn.init.normal_(module.bias, 0.0, 0.5)
            nn.init.uniform_(module.weight, 0.5, 1.5)
            module.running_mean.normal_(0.0, 0.1)
            module.running_var.uniform_(0.5, 2.0)
    return imitator.eval()


def tiny_face_id(seed: int = 1) -> TinyFaceId:
    torch.manual_seed(seed)
    return TinyFaceId().eval()


def game_photos(count: int, seed: int = 0) -> torch.Tensor:
    """Photo-style renders of the game (random pose, light, background), (count, 3, 64, 64) in [0, 1]."""
    from game import Game

    params = sample_uniform(np.random.default_rng(seed), count)
    images = Game(SIZE, "photo").render_batch(params, seeds=range(count))
    return torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255


def snapshot(*modules: nn.Module) -> list[dict[str, torch.Tensor]]:
    return [{k: v.clone() for k, v in m.state_dict().items()} for m in modules]


def assert_untouched(before: list[dict], *modules: nn.Module) -> None:
    for state, module in zip(before, modules):
        for key, value in module.state_dict().items():
            assert torch.equal(value, state[key]), f"{type(module).__name__}.{key} changed"
        assert all(p.grad is None for p in module.parameters()), f"{type(module).__name__} received a .grad"


# ----------------------------------------------------------------------------------------------------------- F2P


def test_f2p_reduces_objective_keeps_range_and_leaves_networks_alone():
    imitator, face_id = tiny_imitator(), tiny_face_id()
    imitator.train()  # a caller's mode: the search must use running statistics and give the mode back
    before = snapshot(imitator, face_id)
    photos = game_photos(3)
    params, history = F2P(imitator, face_id, steps=60).optimise(photos)
    assert params.shape == (3, NUM_PARAMETERS) and params.dtype == torch.float32
    assert torch.isfinite(params).all() and params.abs().max() <= HIGH
    assert history.shape == (60, 3) and torch.isfinite(history).all()
    assert (history[-5:].mean(0) < history[0]).all(), history[[0, -1]]
    assert_untouched(before, imitator, face_id)
    assert imitator.training


def test_f2p_batched_equals_one_by_one():
    f2p = F2P(tiny_imitator(), tiny_face_id(), steps=100)
    photos = game_photos(2, seed=3)
    together = f2p(photos)
    alone = torch.cat([f2p(photos[i : i + 1]) for i in range(2)])
    torch.testing.assert_close(together, alone, atol=1e-4, rtol=0)


def test_f2p_recovers_parameters_the_imitator_rendered():
    imitator = tiny_imitator()
    truth = torch.from_numpy(sample_uniform(np.random.default_rng(5), 3)) * 0.6  # inside the range, off the bounds
    with torch.no_grad():
        photos = imitator(truth)
    found, history = F2P(imitator, tiny_face_id(), steps=80).optimise(photos)
    start_error = truth.abs().mean(1)  # the search starts from the neutral face, p = 0
    error = (found - truth).abs().mean(1)
    # A random imitator ignores some directions of p (no image changes along them), so no search can find
    # those; the error must still fall clearly, and the objective by much more.
    assert (error < 0.9 * start_error).all(), (error, start_error)
    assert (history[-1] < 0.5 * history[0]).all(), history[[0, -1]]


def test_f2p_runs_under_inference_mode_like_a_descriptor():
    f2p = F2P(tiny_imitator(), tiny_face_id(), steps=3)
    with torch.inference_mode():
        params = f2p(torch.rand(2, 3, SIZE, SIZE))
    assert params.shape == (2, NUM_PARAMETERS)


def test_f2p_under_inference_mode_searches_exactly_as_without_it():
    """Descriptors run under inference_mode (eval.verify): the search must still take its gradient steps there,
    not hand back the neutral start, and must find what it finds outside inference_mode."""
    imitator = tiny_imitator()
    truth = torch.from_numpy(sample_uniform(np.random.default_rng(6), 2)) * 0.6
    with torch.no_grad():
        photos = imitator(truth)
    f2p = F2P(imitator, tiny_face_id(), steps=30)
    searched, history = f2p.optimise(photos)
    assert (history[-1] < 0.7 * history[0]).all(), history[[0, -1]]  # 30 steps already lower the objective
    with torch.inference_mode():
        params = f2p(photos)
    torch.testing.assert_close(params, searched)
    assert (params - truth).abs().mean() < truth.abs().mean()  # closer to the truth than the start p = 0


def test_template_content_ignores_exposure_and_background():
    content, photos = TemplateContent(), game_photos(2, seed=7)
    features = content(photos)
    brighter = content((photos * 0.8 + 0.1).clamp(0, 1))  # an affine change of exposure
    torch.testing.assert_close(brighter, features, atol=2e-2, rtol=0)
    corner = photos.clone()
    corner[:, :, :8, :8] = torch.rand(2, 3, 8, 8)  # background outside the face oval
    torch.testing.assert_close(content(corner), features, atol=1e-6, rtol=0)


# ------------------------------------------------------------------------------------------------------- FastF2P


@pytest.fixture(scope="module")
def game_set(rendered_set, tmp_path_factory):
    """32 game screenshots, this module's own copy (the first test writes its split.json)."""
    return rendered_set(32, SIZE, into=tmp_path_factory.mktemp("game") / "set")


def test_fastf2p_trains_on_a_game_set_and_predicts(game_set, tmp_path):
    split = make_split(32, 0.25, seed=0)  # as a DataModule would have written it: train on its train rows
    (game_set / "split.json").write_text(json.dumps(split))
    imitator, face_id = tiny_imitator(), tiny_face_id()
    before = snapshot(imitator, face_id)
    translator, history = train_translator(imitator, face_id, game_set, epochs=6, batch_size=8, lr=1e-3)
    losses = [record["train/loss"] for record in history]
    assert all(np.isfinite(losses)) and losses[-1] < losses[0], losses
    assert {"val/loss", "val/parameter", "train/identity", "train/content", "train/loop"} <= set(history[-1])
    assert_untouched(before, imitator, face_id)

    fast = FastF2P(translator, face_id)
    photos = game_photos(3)
    params = fast(photos)
    assert params.shape == (3, NUM_PARAMETERS) and params.abs().max() <= HIGH and torch.isfinite(params).all()

    path = save_translator(tmp_path / "fastf2p.ckpt", translator, "dlib", history=history)
    reloaded = load_network(path, "translator")
    assert isinstance(reloaded, Translator)
    torch.testing.assert_close(FastF2P(reloaded, face_id)(photos), params)


@pytest.mark.filterwarnings("ignore:'eval.baselines.fastf2p' found in sys.modules")  # runpy re-running a module
def test_fastf2p_command_line_writes_a_loadable_checkpoint(game_set, tmp_path, monkeypatch):
    import runpy
    import sys

    import models.face_id
    from eval.baselines import fastf2p

    imitator_path = write_network_checkpoint(tmp_path / "imitator.ckpt", net=tiny_imitator())
    monkeypatch.setattr(models.face_id, "build_face_id", lambda name, checkpoint=None: tiny_face_id())
    out = tmp_path / "fastf2p.ckpt"
    monkeypatch.setattr(
        sys,
        "argv",
        [
            "fastf2p",
            "--imitator",
            str(imitator_path),
            "--data",
            str(game_set),
            "--out",
            str(out),
            "--epochs",
            "1",
            "--batch-size",
            "8",
            "--device",
            "cpu",
        ],
    )
    runpy.run_module("eval.baselines.fastf2p", run_name="__main__")  # as `python -m eval.baselines.fastf2p`
    fast = fastf2p.load_fastf2p(out)
    assert type(fast.translator) is Translator  # the package's class, not one defined in __main__
    meta = torch.load(out, weights_only=True)["hyper_parameters"]
    assert meta["face_id"] == "dlib" and len(meta["history"]) == 1
    assert fast(game_photos(2)).shape == (2, NUM_PARAMETERS)


def test_one_interface_for_both_baselines():
    imitator, face_id = tiny_imitator(), tiny_face_id()
    estimators = [F2P(imitator, face_id, steps=2), FastF2P(Translator(TinyFaceId.embedding_dim), face_id)]
    photos = torch.rand(2, 3, SIZE, SIZE)
    for estimator in estimators:
        assert isinstance(estimator, ParameterEstimator) and estimator.is_parameters
        assert estimator(photos).shape == (2, NUM_PARAMETERS)
        assert throughput(estimator, photos) > 0
    # Calling F2P is its search: the parameters optimise() ends at, not its start.
    searched = estimators[0].optimise(photos)[0]
    torch.testing.assert_close(estimators[0](photos), searched)
    assert searched.abs().max() > 1e-3
    assert [e.name for e in estimators] == ["f2p", "fastf2p"]
    with pytest.raises(ValueError, match="unknown baseline"):
        build_baseline("f3p", "x.ckpt")
