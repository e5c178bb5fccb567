"""A parameter reader's whole path as one ONNX graph, and an onnxruntime session that runs it.

The graph (`export_onnx`), the contract a user of any ONNX runtime relies on (README, "Export"):
- input `image`: float32 (B, 3, S, S), RGB (not BGR), values in [0, 1], channels first; a face aligned to the
  template of docs/contracts.md section 2 at S = `input_size` px (eval.align.align_photo makes it); B is free;
- output `parameters`: float32 (B, 267) in [-2.5, 2.5], in game/parameters.csv's order (its names are also in
  the model's metadata, `parameter_names`, comma-separated).
Inside: the antialiased resize to the size the model was trained at (as eval.descriptors does it), the frozen
extractors (MediaPipe's landmark net, dlib's descriptor, for the default model) and the calibration (a
FaceFeatureReader's feature standardisation, the regressor's shrinkage); nothing of it trains.
Exported through torch.onnx.export's dynamo path (torch.export, then onnxscript) at ONNX opset OPSET, one file.
"""

from __future__ import annotations

import contextlib
import io
import os
import tempfile
import warnings
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
from torch import nn

from models.resize import resize_to

OPSET = 20  # GridSample (the extractors' fixed crops) on 4-D inputs and Resize with antialias are both in it
INPUT_NAME, OUTPUT_NAME = "image", "parameters"


class ParameterGraph(nn.Module):
    """What the graph computes: aligned crops (B, 3, input_size, input_size) in [0, 1] -> parameters (B, 267), the
    reader run at the size it was trained at (`model_size`; None: as given), exactly as ReaderDescriptor runs it."""

    def __init__(self, reader: nn.Module, model_size: int | None, input_size: int) -> None:
        from models.readers import without_feature_caches

        super().__init__()
        self.reader, self.model_size, self.input_size = without_feature_caches(reader).eval(), model_size, input_size

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        """(B, 3, S, S) float RGB in [0, 1] -> (B, 267) parameters."""
        output = self.reader(resize_to(image, self.model_size))
        return output if isinstance(output, torch.Tensor) else output.parameters


def model_sizes(reader: nn.Module, size: int) -> str:
    """The sizes the graph resizes its input to before reading it: `size`, or an ensemble's members' own sizes
    (models.readers.MeanOfReaders), comma-separated in member order."""
    member_sizes = getattr(reader, "image_sizes", None)
    return ",".join(str(member or size) for member in member_sizes) if member_sizes else str(size)


def unexportable(reader: nn.Module) -> str | None:
    """Why `reader` cannot become a graph that computes what it computes in eval mode, or None."""
    from models.vqvae2 import Quantizer

    for name, module in reader.named_modules():
        if isinstance(module, Quantizer) and not bool(module.vq._codebook.initted):
            # Its first eval batch would run k-means on that batch: a per-call fit, not a fixed function.
            return f"codebook {name} was never initialised (an encoder saved before its first batch)"
    return None


TOLERANCE = 1e-4  # max abs difference over the 267 outputs between onnxruntime and torch that counts as the same


class Exported(NamedTuple):
    """A written graph and how far onnxruntime's answer on the check crops was from torch's."""

    path: Path
    max_abs_difference: float


def export_onnx(
    reader: nn.Module, model_size: int | None, out: str | Path, input_size: int = 256, metadata: dict | None = None
) -> Exported:
    """Write `reader`'s graph (module docstring) to `out`, all in one file, after onnxruntime has run it on two
    random crops and agreed with torch within TOLERANCE; the file appears whole and checked, or not at all.
    `metadata` (str -> str) joins the graph's own (parameter names, input contract). ValueError when the reader
    cannot be exported (unexportable) or the check fails, naming why."""
    import onnx

    from game import parameters as P

    if problem := unexportable(reader):
        raise ValueError(f"cannot export this model: {problem}")
    graph = ParameterGraph(reader, model_size, input_size).eval()
    example = torch.rand(2, 3, input_size, input_size, generator=torch.Generator().manual_seed(0))
    batch = torch.export.Dim("batch", min=1)
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()), torch.no_grad():
        warnings.simplefilter("ignore")  # the exporter's progress and deprecation notes: the result is checked
        program = torch.onnx.export(
            graph,
            (example,),
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            dynamic_shapes=({0: batch},),
            opset_version=OPSET,
            dynamo=True,
            external_data=False,
            verbose=False,
        )
    model = program.model_proto
    strip_trace_notes(model)
    notes = {
        "parameter_names": ",".join(P.names()),
        "parameter_table_version": P.TABLE_VERSION,
        "input": f"{INPUT_NAME}: float32 (B, 3, {input_size}, {input_size}) RGB in [0, 1], aligned to the face "
        "template (docs/contracts.md section 2)",
        "output": f"{OUTPUT_NAME}: float32 (B, 267) in [-2.5, 2.5], game/parameters.csv order",
        "model_image_size": model_sizes(reader, model_size or input_size),
        **{str(k): str(v) for k, v in (metadata or {}).items()},
    }
    del model.metadata_props[:]
    for key, value in notes.items():
        model.metadata_props.add(key=key, value=value)
    out = Path(out)
    # A temporary file beside `out`, renamed over it: a failed or interrupted export never leaves half a model.
    handle, temporary = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".part", dir=out.parent)
    os.close(handle)
    try:
        onnx.save_model(model, temporary)
        with torch.no_grad():
            expected = graph(example).numpy()
        difference = float(np.abs(OnnxParameterModel(temporary).run(example.numpy()) - expected).max())
        if not difference <= TOLERANCE:
            raise ValueError(f"the exported graph differs from torch by {difference:.2g} (over {TOLERANCE:g})")
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temporary, 0o666 & ~umask)  # mkstemp's 0600 would hide the model from other users
        os.replace(temporary, out)
    finally:
        Path(temporary).unlink(missing_ok=True)
    return Exported(out, difference)


def strip_trace_notes(model) -> None:
    """Drop the exporter's per-node notes (Python stack traces with this checkout's paths, FX names that count up
    within a process) from an ONNX ModelProto: the same model then exports to the same bytes, anywhere."""
    graph = model.graph
    for item in [*graph.node, *graph.value_info, *graph.initializer, *graph.input, *graph.output]:
        del item.metadata_props[:]
    del graph.metadata_props[:]


class OnnxParameterModel:
    """An exported graph in an onnxruntime CPU session: images (B, 3, S, S) in [0, 1] -> (B, 267), like a
    ReaderDescriptor; S must be the graph's input size. `threads` defaults to torch's intra-op thread count."""

    def __init__(self, path: str | Path, threads: int | None = None) -> None:
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads or torch.get_num_threads()
        options.inter_op_num_threads = 1
        options.log_severity_level = 3  # errors only: its notes on unused initialisers are not ours to act on
        self.path = Path(path)
        self.session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.input_size = int(self.session.get_inputs()[0].shape[-1])
        self.metadata = dict(self.session.get_modelmeta().custom_metadata_map)

    def run(self, images: np.ndarray) -> np.ndarray:
        """float32 (B, 3, S, S) -> float32 (B, 267)."""
        return self.session.run([OUTPUT_NAME], {INPUT_NAME: np.ascontiguousarray(images, np.float32)})[0]

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        if images.shape[-1] != self.input_size or images.shape[-2] != self.input_size:
            raise ValueError(
                f"{self.path} reads ({INPUT_NAME}) aligned crops of {self.input_size} x {self.input_size} px; "
                f"got {tuple(images.shape)}"
            )
        return torch.from_numpy(self.run(images.detach().float().cpu().numpy()))
