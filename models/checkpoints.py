"""Networks in checkpoints: each is stored as its class path and init args, next to its weights.

A LightningModule keeps `hparams[key] = network_spec(net)`, so `load_network(path, key)` rebuilds
the bare network from a checkpoint alone, without the training config or Lightning (nothing here imports it);
`find_checkpoint` turns a run folder into its newest checkpoint file.
"""

from __future__ import annotations

import importlib
import inspect
from pathlib import Path

import torch
from torch import nn


def network_spec(net: nn.Module) -> dict:
    """{"class_path", "init_args"} that rebuild `net`; it must keep its constructor args as attributes."""
    cls = type(net)
    names = [
        p.name
        for p in inspect.signature(cls).parameters.values()
        if p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    ]
    missing = [name for name in names if not hasattr(net, name)]
    if missing:
        raise TypeError(f"{cls.__qualname__} must keep its constructor arguments {missing} as attributes")
    init_args = {name: getattr(net, name) for name in names}
    init_args = {k: list(v) if isinstance(v, tuple) else v for k, v in init_args.items()}  # YAML-friendly
    # A network built from networks (a reader's E and R) keeps theirs as nested specs.
    init_args = {k: network_spec(v) if isinstance(v, nn.Module) else v for k, v in init_args.items()}
    return {"class_path": f"{cls.__module__}.{cls.__qualname__}", "init_args": init_args}


def build_network(spec: dict) -> nn.Module:
    """Instantiate a network from its {"class_path", "init_args"}, nested network specs first."""
    module_name, _, class_name = spec["class_path"].rpartition(".")
    cls = getattr(importlib.import_module(module_name), class_name)
    init_args = spec["init_args"]
    return cls(
        **{k: build_network(v) if isinstance(v, dict) and "class_path" in v else v for k, v in init_args.items()}
    )


def load_network(checkpoint_path: str | Path, key: str = "net", map_location: str = "cpu") -> nn.Module:
    """The network stored under `key` in a Lightning checkpoint, weights loaded, in eval mode."""
    checkpoint = torch.load(checkpoint_path, map_location=map_location, weights_only=True)
    spec = checkpoint.get("hyper_parameters", {}).get(key)
    if not isinstance(spec, dict) or "class_path" not in spec:
        raise KeyError(f"{checkpoint_path}: no network spec under hyper_parameters[{key!r}]")
    net = build_network(spec)
    prefix = f"{key}."
    state = {k[len(prefix) :]: v for k, v in checkpoint["state_dict"].items() if k.startswith(prefix)}
    net.load_state_dict(state)
    return net.eval()


def find_checkpoint(path: str | Path) -> Path:
    """The checkpoint a path names: a file, a run version's checkpoints/last.ckpt, or a run's newest version's."""
    path = Path(path)
    if path.is_file():
        return path

    def version(checkpoint: Path) -> int:
        number = checkpoint.parts[-3].removeprefix("version_")
        return int(number) if number.isdigit() else -1

    newest_first = sorted(path.glob("version_*/checkpoints/last.ckpt"), key=version, reverse=True)
    for candidate in [path / "checkpoints" / "last.ckpt", *newest_first]:
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(
        f"imitator checkpoint {path}: no such file, and no checkpoints/last.ckpt in it or in a version_N folder "
        f"inside it. Train the imitator first (`make train-imitator`, or `python -m lightning_modules.cli fit "
        f"--config experiments/demo/imitator.yaml` for the demo: runs/<name>/version_N/checkpoints/last.ckpt), "
        f"then set model.init_args.imitator_checkpoint to the run folder (runs/imitator) or a .ckpt file"
    )
