"""The fastest correct way to run a parameter model on the CPU: what the photo tool and the app call.

A path runs ParameterGraph (eval/onnx_export.py: aligned crops of S px -> the model at its trained size -> (B, 267)):
- `eager`: as it is; `channels_last`: NHWC tensors and weights; `compile`: torch.compile (inductor);
- `onnxruntime`: the exported graph in an onnxruntime session, exported once per checkpoint and crop size into a
  cache folder (ONNX_CACHE) and reused; a cached file that fails to load or to agree with eager is exported anew.
`python -m bench.inference` measures all four in one run (bench/README.md, "Inference paths"); CHOSEN_PATH is the
fastest one whose outputs agree with eager within 1e-4 there.
"""

from __future__ import annotations

import copy
import hashlib
import logging
import os
from collections.abc import Callable
from pathlib import Path

import torch

from eval.onnx_export import TOLERANCE, OnnxParameterModel, ParameterGraph, export_onnx

log = logging.getLogger(__name__)

PATHS = ("eager", "channels_last", "compile", "onnxruntime")
# Measured by bench/inference.py (bench/results/inference.json): see bench/README.md for the ratios.
CHOSEN_PATH = "onnxruntime"
ONNX_CACHE = Path("runs/onnx")  # exported graphs, one per (checkpoint content, crop size); LIKENESS_ONNX_CACHE moves it
EXPORT_VERSION = "1"  # bump when ParameterGraph or export_onnx changes what a cached file holds

Predictor = Callable[[torch.Tensor], torch.Tensor]


def build_path(name: str, graph: ParameterGraph, onnx_file: Path | None = None) -> Predictor:
    """Images (B, 3, S, S) in [0, 1] at the graph's input size -> (B, 267) by path `name` (PATHS); onnxruntime
    runs `onnx_file`, exported there first when it is not there."""
    if name == "eager":
        return torch.inference_mode()(graph)
    if name == "channels_last":
        nhwc = copy.deepcopy(graph).to(memory_format=torch.channels_last)  # the caller's graph stays as it is
        return torch.inference_mode()(lambda images: nhwc(images.contiguous(memory_format=torch.channels_last)))
    if name == "compile":
        return torch.inference_mode()(torch.compile(graph))
    if name == "onnxruntime":
        if onnx_file is None:
            raise ValueError("the onnxruntime path needs the .onnx file to run (or to export into)")
        if not onnx_file.is_file():
            onnx_file.parent.mkdir(parents=True, exist_ok=True)
            export_onnx(graph.reader, graph.model_size, onnx_file, graph.input_size)
        return OnnxParameterModel(onnx_file)
    raise ValueError(f"unknown inference path {name!r}; one of {', '.join(PATHS)}")


def onnx_cache() -> Path:
    """The folder of cached exports: $LIKENESS_ONNX_CACHE, else runs/onnx (under the working folder, like runs/)."""
    return Path(os.environ.get("LIKENESS_ONNX_CACHE") or ONNX_CACHE)


def onnx_cache_file(checkpoint: str | Path, input_size: int, cache: Path | None = None) -> Path:
    """Where the exported graph of `checkpoint` for crops of `input_size` px lives (in `cache`, default
    onnx_cache()): named by the file's content, the crop size, torch's version and EXPORT_VERSION, so a retrained
    model never meets a stale graph."""
    cache = onnx_cache() if cache is None else cache
    digest = hashlib.sha256(Path(checkpoint).read_bytes())
    digest.update(f"{input_size}/{torch.__version__}/{EXPORT_VERSION}".encode())
    return cache / f"{Path(checkpoint).stem}-{digest.hexdigest()[:16]}-{input_size}px.onnx"


class FastPredictor:
    """A parameter model on its fastest correct path for crops of `input_size` px; crops of another size take the
    eager path (the same function, resized to the model's size). `path` says which one it took."""

    def __init__(self, graph: ParameterGraph, path: str, fast: Predictor) -> None:
        self.graph, self.path, self.fast = graph, path, fast
        self.eager = build_path("eager", graph)

    @property
    def input_size(self) -> int:
        return self.graph.input_size

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, S, S) float RGB in [0, 1] -> (B, 267) parameters."""
        fast = images.shape[-1] == images.shape[-2] == self.input_size
        return (self.fast if fast else self.eager)(images)


def agrees_with_eager(predict: Predictor, graph: ParameterGraph) -> float:
    """Max abs difference between `predict` and the eager graph on one fixed random crop."""
    crop = torch.rand(1, 3, graph.input_size, graph.input_size, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        return float((predict(crop) - graph(crop)).abs().max())


def fast_predictor(
    checkpoint: str | Path, input_size: int = 256, path: str = CHOSEN_PATH, cache: Path | None = None
) -> FastPredictor:
    """The model in `checkpoint` (anything eval.descriptors.load_parameter_model reads) on `path` for aligned crops
    of `input_size` px. onnxruntime: the export cached in `cache` (default onnx_cache()), exported on first use
    (~20 s for the default model, once per model, crop size and torch version), checked against eager on a crop and
    exported anew if it cannot be loaded or disagrees; where the model cannot be exported, eager, with a warning.
    Raises what load_parameter_model raises for a file that is not a parameter model."""
    from eval.descriptors import load_parameter_model

    reader, model_size = load_parameter_model(checkpoint)
    graph = ParameterGraph(reader, model_size, input_size).eval()
    if path != "onnxruntime":
        return FastPredictor(graph, path, build_path(path, graph))
    onnx_file = onnx_cache_file(checkpoint, input_size, cache)
    for attempt in range(2):
        fresh = attempt > 0 or not onnx_file.is_file()
        if fresh:
            log.warning("exporting %s to %s once, for the onnxruntime path", checkpoint, onnx_file)
            onnx_file.unlink(missing_ok=True)
        try:
            session = build_path("onnxruntime", graph, onnx_file)
        except Exception as error:  # noqa: BLE001 - any failure of the fast path leaves the eager one
            if fresh:
                log.warning("onnxruntime path unavailable for %s (%s): running eager", checkpoint, error)
                break
            log.warning("cannot load the cached %s (%s): exporting it again", onnx_file, error)
            continue
        difference = agrees_with_eager(session, graph)
        if difference <= TOLERANCE:
            return FastPredictor(graph, "onnxruntime", session)
        log.warning("%s differs from eager by %.2g: exporting it again", onnx_file, difference)
    return FastPredictor(graph, "eager", build_path("eager", graph))
