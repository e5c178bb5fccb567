"""A checkpoint is trusted with nothing: crafted class paths are refused before any import, bad files in one line.

The crafted checkpoints name `evil.touch` / `evil.Net` (a helper module that, imported, writes `imported` and,
called, writes `called`) or `subprocess.run` touching a file: on the old loaders each of them ran. Every loader
must refuse them with one line naming the file and the class path, with neither file written and `evil` never
imported; the real checkpoints (tiny stand-ins in the same layout) still load.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import lightning
import pytest
import torch
from fakes import TinyExtractor, imitator_with_statistics, write_imitator_checkpoint, write_network_checkpoint

from lightning_modules import regression
from lightning_modules.imitator import ImitatorModule
from lightning_modules.regression import RegressionModule
from models.checkpoints import NETWORK_CLASSES, CheckpointError, build_network, load_network
from models.imitator import Imitator
from models.regressor import Regressor
from models.vqvae2 import VQVAE2

REPO = Path(__file__).resolve().parents[1]
CLI_INSTANTIATOR = "lightning.pytorch.cli.instantiate_module"
EVIL = """
from pathlib import Path
from torch import nn
HERE = Path(__file__).parent
(HERE / "imported").touch()
def touch(*args, **kwargs):
    (HERE / "called").touch()
class Net(nn.Module):
    def __init__(self, **kwargs):
        super().__init__()
        (HERE / "called").touch()
"""


@pytest.fixture
def evil(tmp_path, monkeypatch):
    """A module `evil` on sys.path that leaves a file behind if imported, another if anything in it is called."""
    folder = tmp_path / "evil_package"
    folder.mkdir()
    (folder / "evil.py").write_text(EVIL)
    monkeypatch.syspath_prepend(str(folder))
    sys.modules.pop("evil", None)
    yield folder
    sys.modules.pop("evil", None)


def assert_nothing_ran(evil: Path, error: pytest.ExceptionInfo, path: Path, refused: str) -> None:
    """Neither file written, `evil` never imported, and a one-line error naming the checkpoint and the class."""
    assert not (evil / "imported").exists() and not (evil / "called").exists() and "evil" not in sys.modules
    assert not (evil / "touched").exists()
    message = str(error.value)
    assert "\n" not in message and str(path) in message and refused in message, message


def crafted(path: Path, hyper_parameters: dict) -> Path:
    """A checkpoint in our layout with the given hyper-parameters and no weights."""
    torch.save({"hyper_parameters": hyper_parameters, "state_dict": {}}, path)
    return path


def run_subprocess_spec(evil: Path) -> dict:
    return {"class_path": "subprocess.run", "init_args": {"args": ["touch", str(evil / "touched")]}}


# ----------------------------------------------------------------------------------- models.checkpoints


@pytest.mark.parametrize("class_path", ["subprocess.run", "evil.touch", "evil.Net", "torch.nn.Linear"])
@pytest.mark.parametrize("key", ["net", "encoder", "regressor", "translator"])
def test_load_network_refuses_a_class_outside_the_allow_list(tmp_path, evil, key, class_path):
    spec = run_subprocess_spec(evil) if class_path == "subprocess.run" else {"class_path": class_path, "init_args": {}}
    path = crafted(tmp_path / "crafted.ckpt", {key: spec})
    with pytest.raises(CheckpointError) as error:
        load_network(path, key)
    assert_nothing_ran(evil, error, path, class_path)


@pytest.mark.parametrize(
    "spec",
    [
        {"class_path": "models.imitator.Imitator", "init_args": {"image_size": {"class_path": "evil.Net"}}},
        {  # an ensemble's members are a list of specs
            "class_path": "models.readers.MeanOfReaders",
            "init_args": {"readers": [{"class_path": "evil.Net", "init_args": {}}], "image_sizes": [64]},
        },
    ],
    ids=["nested", "in a list"],
)
def test_a_refused_class_nested_in_init_args_is_refused_too(tmp_path, evil, spec):
    path = crafted(tmp_path / "nested.ckpt", {"net": spec})
    with pytest.raises(CheckpointError) as error:
        load_network(path)
    assert_nothing_ran(evil, error, path, "evil.Net")


def test_build_network_refuses_before_importing(evil):
    with pytest.raises(CheckpointError) as error:
        build_network({"class_path": "evil.Net", "init_args": {}}, "some.ckpt")
    assert_nothing_ran(evil, error, Path("some.ckpt"), "evil.Net")


def test_every_network_class_that_our_modules_save_is_allowed():
    from eval.baselines.fastf2p import Translator

    for cls in (Imitator, VQVAE2, Regressor, Translator):
        assert f"{cls.__module__}.{cls.__qualname__}" in NETWORK_CLASSES


def test_real_network_checkpoints_still_load(tmp_path):
    net = imitator_with_statistics()
    path = write_network_checkpoint(tmp_path / "imitator.ckpt", net=net)
    loaded = load_network(path)
    assert isinstance(loaded, Imitator) and not loaded.training
    assert all(torch.equal(v, net.state_dict()[k]) for k, v in loaded.state_dict().items())


# --------------------------------------------------------------------------------- unreadable files


def truncated(tmp_path: Path) -> Path:
    real = write_network_checkpoint(tmp_path / "real.ckpt", net=imitator_with_statistics()).read_bytes()
    path = tmp_path / "truncated.ckpt"
    path.write_bytes(real[: len(real) // 2])
    return path


def garbage(tmp_path: Path) -> Path:
    path = tmp_path / "garbage.ckpt"
    path.write_bytes(b"this is not a checkpoint\n" * 10)
    return path


def pickled_call(tmp_path: Path) -> Path:
    """An old-style torch.save of an object whose unpickling would run `touch` (weights_only refuses it)."""

    class Touch:
        def __reduce__(self):
            return subprocess.run, (["touch", str(tmp_path / "touched")],)

    path = tmp_path / "pickled.ckpt"
    torch.save({"hyper_parameters": {"net": Touch()}}, path)
    return path


def empty(tmp_path: Path) -> Path:
    path = tmp_path / "empty.ckpt"
    path.write_bytes(b"")
    return path


BAD_FILES = {
    "truncated": (truncated, "cut short or corrupt"),
    "garbage": (garbage, "not a torch checkpoint"),
    "pickled object": (pickled_call, "holds a pickled object"),
    "missing": (lambda tmp_path: tmp_path / "missing.ckpt", "no such checkpoint file"),
    "empty": (empty, "not a torch checkpoint"),
}


@pytest.mark.parametrize("kind", list(BAD_FILES))
def test_load_network_says_what_is_wrong_with_a_bad_file_in_one_line(tmp_path, kind):
    make, says = BAD_FILES[kind]
    path = make(tmp_path)
    with pytest.raises((CheckpointError, FileNotFoundError)) as error:
        load_network(path)
    message = str(error.value)
    assert "\n" not in message and str(path) in message and says in message, message
    assert "weights_only=False" not in message
    assert not (tmp_path / "touched").exists()


def test_weights_that_do_not_fit_the_class_are_one_line(tmp_path):
    path = write_network_checkpoint(tmp_path / "other.ckpt", net=Imitator(image_size=64, channels=(8, 8, 8, 8)))
    checkpoint = torch.load(path, weights_only=True)
    checkpoint["hyper_parameters"]["net"]["init_args"]["channels"] = [16, 8, 8, 8]
    torch.save(checkpoint, path)
    with pytest.raises(CheckpointError, match="do not fit models.imitator.Imitator") as error:
        load_network(path)
    assert "\n" not in str(error.value) and str(path) in str(error.value)


def test_the_weight_cache_reads_tensors_only(tmp_path):
    """models.weights.read_state_dict (user-supplied extractor weights) instantiates nothing and refuses pickles."""
    from models.weights import read_state_dict

    path = pickled_call(tmp_path)
    with pytest.raises(ValueError, match="not readable as a torch checkpoint with weights_only=True") as error:
        read_state_dict(path, None, "a state_dict")
    assert str(path) in str(error.value) and not (tmp_path / "touched").exists()


# ------------------------------------------------------------------------ LightningModule.load_from_checkpoint


def lightning_checkpoint(path: Path, module: lightning.LightningModule, cli: bool, **hyper_parameters) -> Path:
    """`module` as Lightning saves it (cli: as LightningCLI does, with _class_path and _instantiator), with
    `hyper_parameters` replacing the saved ones."""
    saved = dict(module.hparams)
    if cli:
        saved |= {"_class_path": f"{type(module).__module__}.{type(module).__qualname__}"}
        saved |= {"_instantiator": CLI_INSTANTIATOR}
    checkpoint = {
        "state_dict": module.state_dict(),
        "hyper_parameters": saved | hyper_parameters,
        "pytorch-lightning_version": lightning.__version__,
    }
    module.on_save_checkpoint(checkpoint)
    torch.save(checkpoint, path)
    return path


def tiny_imitator_module() -> ImitatorModule:
    return ImitatorModule(Imitator(image_size=64, channels=(8, 8, 8, 8)))


def imitator_attacks(evil: Path) -> dict[str, tuple[dict, str]]:
    """Hyper-parameters that made the old ImitatorModule.load_from_checkpoint import or run something."""
    return {
        "net runs subprocess": ({"net": run_subprocess_spec(evil)}, "subprocess.run"),
        "net is evil.Net": ({"net": {"class_path": "evil.Net", "init_args": {}}}, "evil.Net"),
        "net as a bare class path": ({"net": "evil.Net"}, "evil.Net"),
        "module class": ({"_class_path": "evil.Net"}, "evil.Net"),
        "optimizer callable": ({"optimizer": "evil.touch"}, "optimizer"),
        "instantiator": ({"_instantiator": "evil.touch"}, "evil.touch"),
    }


@pytest.mark.parametrize("cli", [False, True], ids=["python", "cli"])
@pytest.mark.parametrize(
    "attack",
    [
        "net runs subprocess",
        "net is evil.Net",
        "net as a bare class path",
        "module class",
        "optimizer callable",
        "instantiator",
    ],
)
def test_imitator_module_refuses_crafted_hyper_parameters(tmp_path, evil, cli, attack):
    hyper_parameters, refused = imitator_attacks(evil)[attack]
    if not cli and "_class_path" in hyper_parameters:
        hyper_parameters = hyper_parameters | {"_instantiator": CLI_INSTANTIATOR}  # Lightning reads it only then
    path = lightning_checkpoint(tmp_path / "crafted.ckpt", tiny_imitator_module(), cli, **hyper_parameters)
    with pytest.raises(CheckpointError) as error:
        ImitatorModule.load_from_checkpoint(path)
    assert_nothing_ran(evil, error, path, refused)


@pytest.mark.parametrize("cli", [False, True], ids=["python", "cli"])
def test_real_imitator_module_checkpoints_still_load(tmp_path, cli):
    module = tiny_imitator_module()
    path = lightning_checkpoint(tmp_path / "real.ckpt", module, cli)
    restored = ImitatorModule.load_from_checkpoint(path)
    assert isinstance(restored.net, Imitator) and list(restored.net.channels) == [8, 8, 8, 8]
    assert torch.equal(restored.net.layers[0].weight, module.net.layers[0].weight)


@pytest.fixture
def tiny_regression(tmp_path, monkeypatch) -> RegressionModule:
    monkeypatch.setattr(regression, "build_face_geometry", lambda name, checkpoint=None: TinyExtractor())
    monkeypatch.setattr(regression, "build_face_id", lambda name, checkpoint=None: TinyExtractor())
    imitator = write_imitator_checkpoint(tmp_path / "imitator" / "last.ckpt")
    encoder = VQVAE2(64, channel=16, n_res_block=1, n_res_channel=8, embed_dim=8, n_embed=16)
    return RegressionModule(encoder, Regressor(64, in_channels=16, channels=(8, 8, 8, 8, 8)), str(imitator))


@pytest.mark.parametrize("key", ["encoder", "regressor"])
def test_regression_module_refuses_a_crafted_network(tmp_path, evil, tiny_regression, key):
    path = lightning_checkpoint(tmp_path / "crafted.ckpt", tiny_regression, False, **{key: run_subprocess_spec(evil)})
    with pytest.raises(CheckpointError) as error:
        RegressionModule.load_from_checkpoint(path)
    assert_nothing_ran(evil, error, path, "subprocess.run")


def test_real_regression_module_checkpoints_still_load(tmp_path, tiny_regression):
    path = lightning_checkpoint(tmp_path / "real.ckpt", tiny_regression, True)
    restored = RegressionModule.load_from_checkpoint(path)
    assert torch.equal(restored.encoder.enc_b[0].weight, tiny_regression.encoder.enc_b[0].weight)


@pytest.mark.parametrize("kind", ["truncated", "garbage", "missing"])
def test_load_from_checkpoint_says_what_is_wrong_with_a_bad_file_in_one_line(tmp_path, kind):
    make, says = BAD_FILES[kind]
    path = make(tmp_path)
    with pytest.raises((CheckpointError, FileNotFoundError)) as error:
        ImitatorModule.load_from_checkpoint(path)
    assert "\n" not in str(error.value) and str(path) in str(error.value) and says in str(error.value)


# ------------------------------------------------------------------------------- command lines


def test_training_cli_checks_a_ckpt_path_file_before_building_from_it(tmp_path, evil, monkeypatch):
    """`--ckpt_path FILE`: LightningCLI merges the file's hyper-parameters into the config and builds the model
    from them (it only loads tensors after that); a crafted file is refused first. `--ckpt_path last` names the
    run's own newest file and is resolved by the trainer, which builds nothing from it."""
    from lightning_modules.cli import main

    monkeypatch.chdir(REPO)
    monkeypatch.setattr(sys, "argv", ["lightning_modules.cli"])  # the CLI gets its args from the test
    attack = {"net": {"class_path": "evil.Net", "init_args": {}}}
    path = lightning_checkpoint(tmp_path / "crafted.ckpt", tiny_imitator_module(), True, **attack)
    with pytest.raises(CheckpointError) as error:
        main(["fit", "--config", "experiments/demo/imitator.yaml", "--ckpt_path", str(path)])
    assert_nothing_ran(evil, error, path, "evil.Net")


def reconstruct(run_cli, *args):
    return run_cli("-m", "eval.reconstruct", str(REPO / "README.md"), *args, check=False)


@pytest.mark.parametrize("kind", ["truncated", "garbage", "missing", "pickled object"])
def test_reconstruct_cli_exits_with_one_line_for_a_bad_checkpoint(tmp_path, run_cli, kind):
    make, says = BAD_FILES[kind]
    path = make(tmp_path)
    says = "not found" if kind == "missing" else says  # checked before anything loads
    done = reconstruct(run_cli, "--ckpt", str(path), "--out", str(tmp_path / "out"))
    lines = done.stderr.strip().splitlines()
    assert done.returncode != 0 and len(lines) == 1 and str(path) in lines[0] and says in lines[0], done.stderr
    assert not (tmp_path / "out").exists()


def test_reconstruct_cli_refuses_a_crafted_checkpoint(tmp_path, run_cli):
    touched = tmp_path / "touched"
    spec = {"class_path": "subprocess.run", "init_args": {"args": ["touch", str(touched)]}}
    path = crafted(tmp_path / "crafted.ckpt", {"encoder": spec, "regressor": spec})
    done = reconstruct(run_cli, "--ckpt", str(path), "--out", str(tmp_path / "out"))
    lines = done.stderr.strip().splitlines()
    assert done.returncode != 0 and len(lines) == 1 and str(path) in lines[0] and "subprocess.run" in lines[0]
    assert not touched.exists()


@pytest.mark.parametrize("kind", ["truncated", "garbage", "missing", "crafted"])
def test_verify_cli_exits_with_one_line_for_a_bad_checkpoint(tmp_path, monkeypatch, capsys, kind):
    """eval/verify.py (in-process; the benchmark loading is stubbed: only the checkpoint is under test)."""
    from eval import verify

    monkeypatch.setattr(verify.B, "load", lambda *args, **kwargs: None)
    if kind == "crafted":
        path = crafted(tmp_path / "crafted.ckpt", {"encoder": run_subprocess_spec(tmp_path)})
        says = "subprocess.run"
    else:
        make, says = BAD_FILES[kind]
        path = make(tmp_path)
        says = "not found" if kind == "missing" else says
    args = ["--bench", "lfw", "--root-lfw", str(tmp_path), "--ckpt", str(path), "--face-id", "none"]
    with pytest.raises(SystemExit) as exit_:
        verify.main([*args, "--out", str(tmp_path / "out")])
    lines = capsys.readouterr().err.strip().splitlines()
    assert exit_.value.code not in (0, None) and len(lines) == 1 and str(path) in lines[0] and says in lines[0]
    assert not (tmp_path / "touched").exists() and not (tmp_path / "out").exists()


def test_reader_module_refuses_a_crafted_network_and_loads_its_own(tmp_path):
    from lightning_modules.reader import ParameterReaderModule
    from models.readers import TimmReader

    module = ParameterReaderModule(TimmReader("resnet18"))
    good = lightning_checkpoint(tmp_path / "good.ckpt", module, False)
    assert isinstance(ParameterReaderModule.load_from_checkpoint(good).net, TimmReader)
    touched = tmp_path / "touched"
    bad = lightning_checkpoint(tmp_path / "bad.ckpt", module, False, net=run_subprocess_spec(tmp_path))
    with pytest.raises(CheckpointError, match="subprocess.run") as error:
        ParameterReaderModule.load_from_checkpoint(bad)
    assert str(bad) in str(error.value) and not touched.exists()
