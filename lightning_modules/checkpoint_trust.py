"""Rebuilding a LightningModule from a checkpoint trusts the file with nothing: its class paths are checked first.

`Module.load_from_checkpoint(path)` and LightningCLI's `--ckpt_path FILE` rebuild a module from the file's
hyper_parameters: the module class (`_class_path`), its networks ({"class_path", "init_args"}, built by
jsonargparse or models.checkpoints.build_network), and any callable jsonargparse can resolve from an import path.
`check_module_checkpoint` refuses, before anything is imported, hyper-parameters that name a module outside
MODULE_CLASSES, a network outside models.checkpoints.NETWORK_CLASSES, a network slot that is not such a spec, an
instantiator other than Lightning's, or an optimizer or scheduler (ours live in the run's config.yaml, never in a
checkpoint). A resume (`trainer.fit(ckpt_path=...)`) itself only loads tensors and counters into the module that
the YAML config built; with `--ckpt_path FILE` LightningCLI first merges the file's hyper-parameters into that
config, hence the check in lightning_modules/cli.py.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import yaml

from models.checkpoints import CheckpointError, check_network_classes, class_paths, read_checkpoint

MODULE_CLASSES = frozenset(
    {
        "lightning_modules.imitator.ImitatorModule",
        "lightning_modules.regression.RegressionModule",
        "lightning_modules.reader.ParameterReaderModule",
    }
)
INSTANTIATORS = frozenset({"lightning.pytorch.cli.instantiate_module"})  # what LightningCLI writes
NETWORK_SLOTS = ("net", "encoder", "regressor")  # hyper-parameters that hold a network spec
NEVER_SAVED = ("optimizer", "scheduler")  # callables: in config.yaml, never in a checkpoint of ours


def check_module_hparams(hyper_parameters: object, source: str | Path) -> None:
    """Refuse (CheckpointError naming `source`) hyper-parameters that would make Lightning build anything but ours."""
    if not isinstance(hyper_parameters, dict):
        raise CheckpointError(f"{source}: hyper_parameters is a {type(hyper_parameters).__name__}, not a dict")
    check_network_classes(hyper_parameters, source)
    for class_path in class_paths(hyper_parameters, "_class_path"):
        if not isinstance(class_path, str) or class_path not in MODULE_CLASSES:
            raise CheckpointError(
                f"{source}: refusing _class_path {class_path!r}: not one of our LightningModules "
                f"({', '.join(sorted(MODULE_CLASSES))})"
            )
    for instantiator in class_paths(hyper_parameters, "_instantiator"):
        if instantiator not in INSTANTIATORS:
            raise CheckpointError(f"{source}: refusing _instantiator {instantiator!r}: not Lightning's")
    for name in NETWORK_SLOTS:
        if name in hyper_parameters and not isinstance(hyper_parameters[name], dict):
            raise CheckpointError(
                f"{source}: hyper_parameters[{name!r}] is {hyper_parameters[name]!r}, not a network spec "
                f'{{"class_path", "init_args"}}'
            )
    for name in NEVER_SAVED:
        if name in hyper_parameters:
            raise CheckpointError(
                f"{source}: refusing hyper_parameters[{name!r}]: our checkpoints never carry one (it is in the "
                f"run's config.yaml)"
            )


def check_module_checkpoint(path: str | Path, data: bytes | None = None) -> None:
    """Read a module checkpoint (weights_only) and check its hyper-parameters; one-line errors naming the file."""
    check_module_hparams(read_checkpoint(path, data=data).get("hyper_parameters", {}), path)


class CheckedLoading:
    """Mixin for our LightningModules: load_from_checkpoint checks the file's class paths before Lightning builds."""

    @classmethod
    def load_from_checkpoint(cls, checkpoint_path: str | Path, *args: Any, **kwargs: Any) -> Any:
        """Lightning's load_from_checkpoint of the bytes that check_module_checkpoint passed (read once, so the
        file cannot change between check and load); an hparams_file, which replaces the file's, is checked too."""
        path = Path(checkpoint_path)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no such checkpoint file")
        data = path.read_bytes()
        check_module_checkpoint(path, data)
        hparams_file = kwargs.get("hparams_file") or (args[1] if len(args) > 1 else None)
        if hparams_file is not None:
            check_module_hparams(yaml.safe_load(Path(hparams_file).read_text()) or {}, hparams_file)
        return super().load_from_checkpoint(io.BytesIO(data), *args, **kwargs)
