"""Shared fixtures over tests/fakes.py: tiny data sets, a tiny trained imitator, a free TCP port, a command-line
runner; and the `gpu` marker's skip where there is no CUDA device."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import fakes
import pytest
import torch

REPO = Path(__file__).resolve().parents[1]


def pytest_collection_modifyitems(config, items):
    """Every `gpu` test skips without CUDA, whatever its own skipif says."""
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session", autouse=True)
def _onnx_cache(tmp_path_factory):
    """The photo tool's cached ONNX exports (eval.fast_inference) go to a folder of the test session, not to the
    checkout's runs/onnx; processes the tests start inherit it."""
    os.environ["LIKENESS_ONNX_CACHE"] = str(tmp_path_factory.mktemp("onnx-cache"))


# ------------------------------------------------------------------------------------------------- data sets


@pytest.fixture
def screenshot_set(tmp_path):
    """A factory of fake format-v1 screenshot sets under this test's tmp_path: screenshot_set(count, size, name=...,
    **write_screenshot_set's options) -> root."""

    def make(count: int = 16, size: int = 64, name: str = "set", **options) -> Path:
        return fakes.write_screenshot_set(tmp_path / name, count=count, size=size, **options)

    return make


@pytest.fixture(scope="session")
def rendered_set(tmp_path_factory):
    """A factory of small sets rendered by the real engine (game.dataset.generate, one worker), made once per session
    for each setting: rendered_set(count, size, style=..., renders_per_identity=..., seed=...) -> root.

    The cached set is shared between tests: a test that writes into its set (a DataModule's split.json, say) passes
    `into=tmp_path / "name"` and gets its own copy there.
    """
    made: dict[tuple, Path] = {}

    def make(count: int, size: int, into: Path | None = None, **settings) -> Path:
        key = (count, size, tuple(sorted(settings.items())))
        if key not in made:
            from game.dataset import generate

            root = tmp_path_factory.mktemp(f"rendered_set_{count}x{size}") / "set"
            made[key] = generate(root, count, size=size, workers=1, progress=False, **settings)
        if into is None:
            return made[key]
        shutil.copytree(made[key], into)
        return Path(into)

    return make


# -------------------------------------------------------------------------------------------------- networks


@pytest.fixture(scope="session")
def trained_imitator(tmp_path_factory) -> Path:
    """The checkpoint of a tiny 64 px imitator trained for a few seconds on fakes.fake_render's screenshots."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny nets: one thread beats two fighting over a shared CPU
    try:
        net = fakes.train_tiny_imitator()
    finally:
        torch.set_num_threads(threads)
    return fakes.write_network_checkpoint(tmp_path_factory.mktemp("trained_imitator") / "last.ckpt", net=net)


# -------------------------------------------------------------------------------------------- processes, ports


@pytest.fixture
def free_port() -> int:
    """A TCP port on localhost that nothing listens on now."""
    return fakes.free_port()


@pytest.fixture
def run_cli():
    """Run `python ARGS...` in a subprocess from the repository root with W&B offline, as a user would (with
    repo_on_path, the repository also goes on PYTHONPATH: processes that DDP launches need it); fail the test with
    the end of stderr unless it exits 0 (check=False: return it anyway). Returns the CompletedProcess, text
    output captured."""

    def run(*args, cwd: Path = REPO, timeout: float = 300, repo_on_path: bool = False, check: bool = True):
        command = [sys.executable, *map(str, args)]
        environment = {**os.environ, "WANDB_MODE": "offline", "WANDB_SILENT": "true"}
        if repo_on_path:
            environment["PYTHONPATH"] = str(REPO)
        done = subprocess.run(command, cwd=cwd, env=environment, capture_output=True, text=True, timeout=timeout)
        if check:
            assert done.returncode == 0, f"{' '.join(command)} exited {done.returncode}:\n{done.stderr[-3000:]}"
        return done

    return run
