"""The ONNX export (python -m eval.export; eval/onnx_export.py) and the fast inference paths (eval/fast_inference.py):
onnxruntime gives torch's parameters on real aligned crops, the graph states its contract, bad input is one line."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from fakes import write_network_checkpoint
from skimage import data

from eval.align import align_photo
from eval.descriptors import DEFAULT_MODEL, ReaderDescriptor, load_parameter_model
from eval.export import main
from eval.fast_inference import PATHS, ParameterGraph, build_path, fast_predictor, onnx_cache_file
from eval.onnx_export import OPSET, OnnxParameterModel
from game import Game
from game import parameters as P
from models.regressor import Regressor
from models.vqvae2 import VQVAE2

SIZE = 256  # the photo tool's aligned crop, the export's default input


@pytest.fixture(scope="module")
def real_crops() -> torch.Tensor:
    """(4, 3, 256, 256) real aligned crops in [0, 1]: the astronaut aligned by eval.align, and the engine's renders
    of the neutral face and of two random characters (the game frames them on the template)."""
    face = align_photo(data.astronaut(), "skimage.data.astronaut()", SIZE)[0].image
    rng = np.random.default_rng(0)
    game = Game(SIZE)
    renders = [game.render(p) for p in [np.zeros(267, np.float32), *rng.uniform(-2.5, 2.5, (2, 267)).astype("f4")]]
    return torch.from_numpy(np.stack([face, *renders])).permute(0, 3, 1, 2).float() / 255


def tiny_regression_checkpoint(path: Path, kmeans_init: bool = False) -> Path:
    """A paper-method regression checkpoint in the layout of docs/contracts.md section 6 (encoder E, regressor R
    with a fitted-looking shrinkage), tiny widths at 64 px."""
    torch.manual_seed(0)
    encoder = VQVAE2(64, channel=16, n_res_block=1, n_res_channel=8, embed_dim=8, n_embed=16, kmeans_init=kmeans_init)
    regressor = Regressor(64, in_channels=16, channels=(8, 8, 8, 8, 8))
    with torch.no_grad():
        regressor.head.weight.mul_(100)  # answers away from the neutral face
        regressor.shrinkage.uniform_(0.2, 1.0)  # the calibration must travel with the graph
    datamodule = {"parameter_table_version": P.TABLE_VERSION, "image_size": 64}
    return write_network_checkpoint(path, {"CrossDomainDataModule": datamodule}, encoder=encoder, regressor=regressor)


def torch_parameters(checkpoint: Path, crops: torch.Tensor) -> np.ndarray:
    """What the photo tool's torch path answers: load_parameter_model, run at the model's own size."""
    return ReaderDescriptor("torch", *load_parameter_model(checkpoint))(crops).numpy()


@pytest.fixture(scope="module")
def default_onnx(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("export") / "default.onnx"
    assert main(["--out", str(out)]) == 0
    return out


def test_the_default_model_exports_and_onnxruntime_agrees_on_real_crops(default_onnx, real_crops):
    ours = OnnxParameterModel(default_onnx)(real_crops).numpy()
    expected = torch_parameters(DEFAULT_MODEL, real_crops)
    assert ours.shape == (4, P.NUM_PARAMETERS) and np.abs(ours).max() <= 2.5
    assert np.abs(ours - expected).max() <= 1e-4
    assert np.abs(ours[0] - ours[1:]).max() > 0.05  # it reads the crops: the astronaut is not a render


def test_the_graph_states_its_contract(default_onnx):
    model = onnx.load(str(default_onnx))
    (image,), (parameters,) = model.graph.input, model.graph.output

    def dims(value):
        return [d.dim_param or d.dim_value for d in value.type.tensor_type.shape.dim]

    assert image.name == "image" and dims(image) == ["batch", 3, SIZE, SIZE]
    assert parameters.name == "parameters" and dims(parameters) == ["batch", P.NUM_PARAMETERS]
    assert image.type.tensor_type.elem_type == parameters.type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert {o.domain: o.version for o in model.opset_import}[""] == OPSET
    notes = {p.key: p.value for p in model.metadata_props}
    assert notes["parameter_names"].split(",") == P.names()
    reader, trained_at = load_parameter_model(DEFAULT_MODEL)  # the size(s) the shipped model was trained at
    sizes = [str(size) for size in getattr(reader, "image_sizes", [trained_at])]  # an ensemble's: each member's
    assert notes["parameter_table_version"] == P.TABLE_VERSION and notes["model_image_size"].split(",") == sizes
    assert oct(default_onnx.stat().st_mode & 0o044) == oct(0o044)  # readable by others, unlike mkstemp's files


def test_a_paper_regression_checkpoint_exports_e_and_r(tmp_path, real_crops, capsys):
    checkpoint = tiny_regression_checkpoint(tmp_path / "run.ckpt")
    out = tmp_path / "paper.onnx"
    assert main(["--ckpt", str(checkpoint), "--out", str(out)]) == 0
    assert f"wrote {out}" in capsys.readouterr().out
    ours = OnnxParameterModel(out)(real_crops).numpy()
    expected = torch_parameters(checkpoint, real_crops)
    assert np.abs(expected).max() > 0.1 and np.abs(ours - expected).max() <= 1e-4
    # Two exports of one model are the same bytes (no stack traces, paths or counters in the file).
    again = tmp_path / "again.onnx"
    assert main(["--ckpt", str(checkpoint), "--out", str(again), "--size", str(SIZE)]) == 0
    assert again.read_bytes() == out.read_bytes()


def ckpt_missing(tmp_path):
    return ["--ckpt", str(tmp_path / "none.pt")], str(tmp_path / "none.pt"), "not found"


def ckpt_garbage(tmp_path):
    (tmp_path / "garbage.pt").write_bytes(b"not a checkpoint at all")
    return ["--ckpt", str(tmp_path / "garbage.pt")], str(tmp_path / "garbage.pt"), "not a readable checkpoint"


def ckpt_uninitialised_codebook(tmp_path):
    path = tiny_regression_checkpoint(tmp_path / "fresh.ckpt", kmeans_init=True)
    return ["--ckpt", str(path)], str(path), "codebook encoder.quantize_t was never initialised"


def out_below_a_file(tmp_path):
    (tmp_path / "taken").write_text("a file")
    return ["--out", str(tmp_path / "taken" / "model.onnx")], str(tmp_path / "taken"), "is a file"


def out_unwritable(tmp_path):
    if os.geteuid() != 0:  # procfs refuses even root; others meet a plain read-only folder
        (tmp_path / "locked").mkdir(mode=0o500)
        return ["--out", str(tmp_path / "locked" / "model.onnx")], str(tmp_path / "locked"), "cannot write into"
    return ["--out", "/proc/likeness-export.onnx"], "/proc/likeness-export.onnx", "cannot write into /proc"


def out_exists(tmp_path):
    (tmp_path / "model.onnx").write_text("an earlier export")
    return ["--out", str(tmp_path / "model.onnx")], str(tmp_path / "model.onnx"), "exists; pass --overwrite"


def out_is_a_folder(tmp_path):
    (tmp_path / "models").mkdir()
    return ["--out", str(tmp_path / "models")], str(tmp_path / "models"), "is a folder"


BAD_INPUTS = [
    ckpt_missing,
    ckpt_garbage,
    ckpt_uninitialised_codebook,
    out_below_a_file,
    out_unwritable,
    out_exists,
    out_is_a_folder,
]


@pytest.mark.parametrize("make", BAD_INPUTS)
def test_bad_input_is_one_line_naming_the_file_and_nothing_is_written(make, tmp_path, capsys):
    good_ckpt = tiny_regression_checkpoint(tmp_path / "good.ckpt")
    args, names, says = make(tmp_path)
    argv = ["--ckpt", str(good_ckpt), "--out", str(tmp_path / "model.onnx"), "--size", "64"]
    for flag, value in zip(args[::2], args[1::2]):  # the bad argument replaces the good one
        argv[argv.index(flag) + 1] = value
    before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    try:
        status = main(argv)
    except SystemExit as stopped:
        status = stopped.code
    lines = capsys.readouterr().err.strip().splitlines()
    assert status != 0 and len(lines) == 1, lines
    assert lines[0].startswith("python -m eval.export: error: ") and names in lines[0] and says in lines[0]
    after = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    assert after == before, "a refused export wrote or changed a file"


def tiny_graph(tmp_path: Path) -> tuple[ParameterGraph, Path]:
    checkpoint = tiny_regression_checkpoint(tmp_path / "tiny.ckpt")
    reader, model_size = load_parameter_model(checkpoint)
    return ParameterGraph(reader, model_size, 64).eval(), checkpoint


@pytest.mark.parametrize("name", [pytest.param(p, marks=[pytest.mark.slow] if p == "compile" else []) for p in PATHS])
def test_every_inference_path_gives_the_eager_parameters(name, tmp_path):
    graph, _ = tiny_graph(tmp_path)
    crops = torch.rand(3, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    expected = build_path("eager", graph)(crops)
    got = build_path(name, graph, tmp_path / "tiny.onnx")(crops)
    assert (got - expected).abs().max() <= 1e-4 and expected.abs().max() > 0.1
    assert next(graph.parameters()).is_contiguous(), "a path changed the caller's graph"


def test_fast_predictor_exports_once_reuses_and_repairs_its_cache(tmp_path, real_crops):
    checkpoint, cache = tiny_regression_checkpoint(tmp_path / "run.ckpt"), tmp_path / "cache"
    predictor = fast_predictor(checkpoint, SIZE, cache=cache)
    cached = onnx_cache_file(checkpoint, SIZE, cache)
    assert predictor.path == "onnxruntime" and cached.is_file()
    expected = torch_parameters(checkpoint, real_crops)
    assert np.abs(predictor(real_crops).numpy() - expected).max() <= 1e-4
    written = cached.stat().st_mtime_ns
    assert fast_predictor(checkpoint, SIZE, cache=cache).path == "onnxruntime"
    assert cached.stat().st_mtime_ns == written, "the cached export was not reused"
    cached.write_bytes(b"damaged")  # a cut-short or foreign file: exported anew, not trusted
    repaired = fast_predictor(checkpoint, SIZE, cache=cache)
    assert repaired.path == "onnxruntime" and np.abs(repaired(real_crops).numpy() - expected).max() <= 1e-4
    small = torch.nn.functional.interpolate(real_crops, size=(96, 96), mode="bilinear", antialias=True)
    assert np.abs(repaired(small).numpy() - torch_parameters(checkpoint, small)).max() <= 1e-5  # other sizes: eager


def test_a_model_that_cannot_export_runs_eager_with_a_warning(tmp_path, caplog):
    checkpoint = tiny_regression_checkpoint(tmp_path / "fresh.ckpt", kmeans_init=True)
    with caplog.at_level(logging.WARNING, logger="eval.fast_inference"):
        predictor = fast_predictor(checkpoint, 64, cache=tmp_path / "cache")
    assert predictor.path == "eager" and "never initialised" in caplog.text
    assert predictor(torch.rand(1, 3, 64, 64)).shape == (1, P.NUM_PARAMETERS)
