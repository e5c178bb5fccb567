"""Networks in checkpoints: each is stored as its class path and init args, next to its weights.

A LightningModule keeps `hparams[key] = network_spec(net)`, so `load_network(path, key)` rebuilds
the bare network from a checkpoint alone, without the training config or Lightning (nothing here imports it);
`find_checkpoint` turns a run folder into its newest checkpoint file. `export_network` writes one network alone in the
same layout (spec + weights under `net.`, plus an `export` dict of metadata): what weights/ ships.

A checkpoint is data from outside and is trusted with nothing: `read_checkpoint` reads it with
torch.load(weights_only=True) (tensors and plain data, no pickled objects), and a class path in it is built only
if it is in NETWORK_CLASSES, checked before anything is imported; otherwise a CheckpointError names the file and
what is wrong, in one line.
"""

from __future__ import annotations

import importlib
import inspect
import io
import json
import warnings
from collections.abc import Iterator
from pathlib import Path

import torch
from torch import nn

from models.weights import layout_mismatch

# Every class a checkpoint of ours names (hyper_parameters[<net>]["class_path"], written by network_spec): the
# imitator G, the VQ-VAE-2 encoder E, the regressor R and the FastF2P baseline's translator. Strings, so this layer
# imports none of them; add a class here when a module starts saving it.
NETWORK_CLASSES = frozenset(
    {
        "models.imitator.Imitator",
        "models.vqvae2.VQVAE2",
        "models.regressor.Regressor",
        "models.readers.TimmReader",
        "models.readers.EncoderRegressorReader",
        "models.readers.FaceFeatureReader",
        "models.readers.MeanOfReaders",
        "eval.baselines.fastf2p.Translator",
    }
)


class CheckpointError(ValueError):
    """A checkpoint file that cannot be read, or that names a class we do not build; the message names the file."""


def read_checkpoint(path: str | Path, map_location: str = "cpu", mmap: bool = False, data: bytes | None = None) -> dict:
    """A checkpoint file's contents (or `data`, the bytes read from it), read with weights_only=True; a one-line
    error naming the file otherwise."""
    path = Path(path)
    if data is None and not path.is_file():
        raise FileNotFoundError(f"{path}: no such checkpoint file")
    try:
        source = path if data is None else io.BytesIO(data)
        checkpoint = torch.load(source, map_location=map_location, weights_only=True, mmap=mmap and data is None)
    except Exception as error:  # torch raises anything from EOFError to IndexError on a file it cannot parse
        raise CheckpointError(f"{path}: not a readable checkpoint: {_why_unreadable(error)}") from error
    if not isinstance(checkpoint, dict):
        raise CheckpointError(f"{path}: not a Lightning checkpoint: it holds a {type(checkpoint).__name__}, not a dict")
    return checkpoint


def _why_unreadable(error: Exception) -> str:
    """torch.load's error in one line, without its advice to retry with weights_only=False."""
    text = str(error)
    if "WeightsUnpickler error:" in text:  # a pickled object other than tensors and plain data
        detail = text.split("WeightsUnpickler error:", 1)[1].strip().splitlines()[0].split(" was not an allowed")[0]
        return f"it holds a pickled object, which weights_only loading refuses ({detail})"
    if "zip archive" in text:
        return "the file is cut short or corrupt (its zip archive is incomplete)"
    first_line = (text.strip().splitlines() or [""])[0][:200]
    return f"not a torch checkpoint ({type(error).__name__}{': ' + first_line if first_line else ''})"


def class_paths(tree: object, key: str = "class_path") -> Iterator[object]:
    """Every value under `key` in nested dicts and lists (hyper-parameters as saved)."""
    if isinstance(tree, dict):
        for name, value in tree.items():
            if name == key:
                yield value
            yield from class_paths(value, key)
    elif isinstance(tree, (list, tuple)):
        for value in tree:
            yield from class_paths(value, key)


def check_network_classes(tree: object, source: str | Path) -> None:
    """Refuse (CheckpointError naming `source`) any class_path in `tree` that is not in NETWORK_CLASSES."""
    for class_path in class_paths(tree):
        if not isinstance(class_path, str) or class_path not in NETWORK_CLASSES:
            raise CheckpointError(
                f"{source}: refusing class_path {class_path!r}: not one of our network classes "
                f"({', '.join(sorted(NETWORK_CLASSES))}); a checkpoint may only name those"
            )


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
    # A network built from networks (a reader's E and R, an ensemble's members) keeps theirs as nested specs.
    return {
        "class_path": f"{cls.__module__}.{cls.__qualname__}",
        "init_args": {k: _spec_value(v) for k, v in init_args.items()},
    }


def _spec_value(value: object) -> object:
    """A constructor argument as a spec holds it: a network as its spec, a list of networks (nn.ModuleList too) as a
    list of specs, a tuple as a list (YAML-friendly)."""
    if isinstance(value, nn.ModuleList) or (
        isinstance(value, (list, tuple)) and value and all(isinstance(v, nn.Module) for v in value)
    ):
        return [network_spec(v) for v in value]
    if isinstance(value, nn.Module):
        return network_spec(value)
    return list(value) if isinstance(value, tuple) else value


def build_network(spec: dict, source: str | Path = "network spec") -> nn.Module:
    """Instantiate a network from its {"class_path", "init_args"}; a class outside NETWORK_CLASSES is refused
    before anything is imported (`source`, e.g. the checkpoint file, names where the spec came from)."""
    check_network_classes(spec, source)
    module_name, _, class_name = spec["class_path"].rpartition(".")
    cls = getattr(importlib.import_module(module_name), class_name)
    init_args = spec.get("init_args", {})
    # Networks made of networks (models.readers) hold their parts' specs, each built (and checked above) first.
    built = {k: _built_value(v, source) for k, v in init_args.items()}
    try:
        return cls(**built)
    except (TypeError, ValueError) as error:  # init_args that do not fit the class's constructor
        raise CheckpointError(
            f"{source}: cannot build {spec['class_path']} from init_args {init_args}: {error}"
        ) from error


def _built_value(value: object, source: str | Path) -> object:
    """A spec's constructor argument as the constructor takes it: a nested spec (or a list of them) built."""
    if isinstance(value, dict) and "class_path" in value:
        return build_network(value, source)
    if isinstance(value, list) and value and all(isinstance(v, dict) and "class_path" in v for v in value):
        return [build_network(v, source) for v in value]
    return value


def load_network(checkpoint_path: str | Path, key: str = "net", map_location: str = "cpu") -> nn.Module:
    """The network stored under `key` in a Lightning checkpoint, weights loaded, in eval mode."""
    checkpoint = read_checkpoint(checkpoint_path, map_location)
    hyper_parameters = checkpoint.get("hyper_parameters")
    spec = hyper_parameters.get(key) if isinstance(hyper_parameters, dict) else None
    if not isinstance(spec, dict) or "class_path" not in spec:
        raise KeyError(f"{checkpoint_path}: no network spec under hyper_parameters[{key!r}]")
    net = build_network(spec, checkpoint_path)
    prefix = f"{key}."
    weights = checkpoint.get("state_dict")
    state = (
        {k[len(prefix) :]: v for k, v in weights.items() if k.startswith(prefix)} if isinstance(weights, dict) else {}
    )
    try:
        net.load_state_dict(state)
    except RuntimeError as error:  # torch lists every key over many lines: say it in one
        got = {k: tuple(v.shape) for k, v in state.items()}
        expected = {k: tuple(v.shape) for k, v in net.state_dict().items()}
        raise CheckpointError(
            f"{checkpoint_path}: the weights under state_dict['{prefix}*'] do not fit {spec['class_path']}. "
            f"{layout_mismatch(got, expected)}"
        ) from error
    return net.eval()


EXPORT_KEY = "export"  # the metadata of an exported network (parameter-table version, image size, commit, ...)


def export_network(net: nn.Module, metadata: dict, key: str = "net", half: bool = False) -> bytes:
    """The bytes of a file holding `net` alone, in the layout `load_network(file, key)` reads: its spec under
    hyper_parameters[key], its weights under `key.` in state_dict, and `metadata` under EXPORT_KEY, as JSON's plain
    data (a str subclass such as torch.__version__ would be a pickled object that weights_only loading refuses).
    `half`: float32 tensors are stored as float16 (half the file; load_state_dict casts them back into the float32
    network); float64 ones (running sums, which overflow float16) and integers stay as they are."""
    metadata = json.loads(json.dumps(metadata))

    def stored(name: str, value: torch.Tensor) -> torch.Tensor:
        value = value.detach().cpu()
        if not half or value.dtype != torch.float32:
            return value
        if value.numel() and value.abs().max() > torch.finfo(torch.float16).max:
            raise ValueError(f"{name}: values up to {value.abs().max():.3g} do not fit float16; export in float32")
        return value.half()

    checkpoint = {
        "hyper_parameters": {key: network_spec(net)},
        "state_dict": {f"{key}.{name}": stored(name, value) for name, value in net.state_dict().items()},
        EXPORT_KEY: metadata,
    }
    buffer = io.BytesIO()
    torch.save(checkpoint, buffer)
    return buffer.getvalue()


# Written beside last.ckpt by lightning_modules.run_folder.LastCheckpoint when fit ends (models sits below it).
FIT_COMPLETE = "fit_complete.json"


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
            if not (candidate.parent / FIT_COMPLETE).is_file():
                warnings.warn(
                    f"{candidate}: its fit did not end (no {FIT_COMPLETE} beside it), so this is the state after its "
                    "latest validation, not the end of training; finish the run (`--ckpt_path last`) to use the "
                    "trained network",
                    stacklevel=2,
                )
            return candidate
    raise FileNotFoundError(
        f"imitator checkpoint {path}: no such file, and no checkpoints/last.ckpt in it or in a version_N folder "
        f"inside it. Train the imitator first (`make train-imitator`, or `python -m lightning_modules.cli fit "
        f"--config experiments/demo/imitator.yaml` for the demo: runs/<name>/version_N/checkpoints/last.ckpt), "
        f"then set model.init_args.imitator_checkpoint to the run folder (runs/imitator) or a .ckpt file"
    )
