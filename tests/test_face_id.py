"""F_id extractors: dlib's descriptor against face-api's own runtime, its template->chip warp, its frozen-ness and
identity sense on a real face; LightCNN-29 v2's shapes and checkpoint loader; the factory and the fetch."""

import json
import shutil
import subprocess
from collections import OrderedDict
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from skimage import data

from game.framing import TEMPLATE, similarity_to_template
from game.topology import loop
from models import weights
from models.dlib_resnet import DLIB_CHIP_POINTS, DLIB_CHIP_TO_TEMPLATE, DlibFaceDescriptor
from models.face_id import build_face_id
from models.face_mesh import astronaut_landmarks
from models.lightcnn import LIGHTCNN_FILE, LightCNN29v2

REFERENCE_SCRIPT = Path(__file__).parent / "reference" / "face_api_descriptor.mjs"
DLIB_THRESHOLD = 0.6  # dlib's same-person Euclidean distance


@pytest.fixture(scope="module")
def extractor():
    """dlib's descriptor with the cached face-api weights."""
    return DlibFaceDescriptor()


def align_to_template(image: np.ndarray, points: np.ndarray, size: int) -> torch.Tensor:
    """(1, 3, size, size) [0, 1] face of a uint8 image aligned to the template by its five points (OpenCV warp)."""
    matrix = similarity_to_template(points, size)
    # similarity_to_template works in continuous pixels (centres at c + 0.5); OpenCV puts centres on integers.
    matrix[:, 2] += matrix[:, :2].sum(1) * 0.5 - 0.5
    warped = cv2.warpAffine(image, matrix, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    return torch.from_numpy(warped).permute(2, 0, 1)[None].float() / 255


@pytest.fixture(scope="module")
def face():
    """skimage's astronaut aligned to the template at 256 px, her five points from MediaPipe's landmarks."""
    lm = astronaut_landmarks()
    points = np.stack(
        [lm[loop("RIGHT_EYE"), :2].mean(0), lm[loop("LEFT_EYE"), :2].mean(0), lm[1, :2], lm[61, :2], lm[291, :2]]
    )
    return align_to_template(data.astronaut(), points, 256)


@pytest.fixture(scope="module")
def face_api_folder() -> Path:
    """The cached face-api files the reference runtime needs, or a skip saying what is missing."""
    if shutil.which("node") is None:
        pytest.skip("node is not on PATH: the reference runtime (face-api's tfjs) runs under Node.js")
    folder = weights.cache_dir() / weights.FACE_API_DIR
    missing = [name for name in weights.FACE_API_MEMBERS.values() if not (folder / name).is_file()]
    if missing:
        pytest.skip(f"{missing} not in {folder}; run `python -m models fetch`")
    return folder


def face_api_descriptors(folder: Path, chips: np.ndarray, tmp_path: Path) -> np.ndarray:
    """(N, 128) descriptors of (N, 150, 150, 3) RGB 0-255 chips from face-api's tfjs, run by node."""
    np.save(tmp_path / "chips.npy", np.ascontiguousarray(chips, dtype=np.float32))
    command = ["node", str(REFERENCE_SCRIPT), str(folder), str(tmp_path / "chips.npy"), str(tmp_path / "out.json")]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, f"{REFERENCE_SCRIPT.name} failed:\n{result.stderr[-2000:]}"
    return np.array(json.loads((tmp_path / "out.json").read_text())["descriptors"], dtype=np.float32)


def test_port_matches_face_api_runtime(face_api_folder, extractor, face, tmp_path):
    noise = torch.rand(1, 3, 150, 150, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        chips = torch.cat([extractor.chip(face), extractor.chip(face.flip(-1)), noise]) * 255
        ours = extractor.net(chips).numpy()
    reference = face_api_descriptors(face_api_folder, chips.permute(0, 2, 3, 1).numpy(), tmp_path)
    assert reference.shape == (3, 128)
    assert np.abs(ours - reference).max() < 1e-4  # measured: 2.7e-7, descriptors up to 0.41


def test_gradients_reach_the_image_but_not_the_weights(extractor, face):
    images = torch.cat([face, face.flip(-1)]).requires_grad_(True)
    descriptors = extractor(images)
    (descriptors[0] - descriptors[1]).square().sum().backward()
    assert torch.isfinite(images.grad).all()
    assert (images.grad != 0).float().mean() > 0.3  # the chip covers the central ~0.45 of the template crop
    assert not any(t.requires_grad for t in [*extractor.parameters(), *extractor.buffers()])
    extractor.train()
    assert not extractor.training and not any(m.training for m in extractor.modules())
    assert extractor.state_dict() == {}  # weights come from the cache, never from a checkpoint
    assert extractor.embedding_dim == descriptors.shape[1] == 128


def blob_centroids(chip: torch.Tensor) -> np.ndarray:
    """Intensity-weighted centroids of the left and right halves of a (150, 150) chip, in pixel indices."""
    ys, xs = np.mgrid[:150, :150].astype(np.float64)
    weight = chip.double().numpy()
    halves = [xs < 75, xs >= 75]
    return np.array(
        [[(xs * weight * h).sum() / (weight * h).sum(), (ys * weight * h).sum() / (weight * h).sum()] for h in halves]
    )


@pytest.mark.parametrize("size", [128, 256, 512])
def test_chip_puts_template_eyes_where_dlib_expects_eyes(extractor, size):
    # Two small Gaussian spots at the template's eye centres, in continuous pixels (centre of pixel c at c + 0.5).
    sigma = 2.5 * size / 225  # ~2.5 chip pixels
    centres = np.arange(size) + 0.5
    image = np.zeros((size, size))
    for fx, fy in TEMPLATE[:2]:
        image += np.exp(-((centres[None] - fx * size) ** 2 + (centres[:, None] - fy * size) ** 2) / (2 * sigma**2))
    images = torch.from_numpy(image).float().expand(1, 3, size, size)
    with torch.no_grad():
        found = blob_centroids(extractor.chip(images)[0, 0])
    to_chip = np.linalg.inv(np.vstack([DLIB_CHIP_TO_TEMPLATE, [0, 0, 1]]))[:2]
    predicted = TEMPLATE[:2] @ to_chip[:, :2].T + to_chip[:, 2]
    assert np.abs(found - predicted).max() < 0.3  # the warp does what its matrix says, at every input size
    # ... and that is where dlib's mean face has its eye centres, up to the template's own shape (2.05 px).
    assert np.linalg.norm(found - DLIB_CHIP_POINTS[:2], axis=1).max() < 2.5


def test_identity_sense_on_a_real_face(extractor, face):
    shifted_brighter = (torch.roll(face, (3, -2), (2, 3)) * 1.1).clamp(0, 1)
    noise = torch.rand(face.shape, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        same, moved, upside_down, random = extractor(torch.cat([face, shifted_brighter, face.flip(-2), noise]))
    # Measured: 0.14 for the moved copy; 0.79 for the upside-down face and for noise.
    assert (same - moved).norm() < DLIB_THRESHOLD / 2
    assert (same - upside_down).norm() > DLIB_THRESHOLD
    assert (same - random).norm() > DLIB_THRESHOLD


@pytest.mark.parametrize("shape", [(3, 256, 256), (1, 3, 256, 192)])
def test_wrong_shape_names_the_expected_one(extractor, shape):
    with pytest.raises(ValueError, match=r"\(B, 3, S, S\)"):
        extractor(torch.zeros(shape))


def test_lightcnn_shapes_and_frozen():
    net = LightCNN29v2()
    images = torch.rand(1, 3, 160, 160, requires_grad=True)
    crop = net.crop(images)
    assert crop.shape == (1, 1, 128, 128) and crop.min() >= 0 and crop.max() <= 1
    features = net(images)
    assert features.shape == (1, net.embedding_dim) == (1, 256)
    features.square().sum().backward()
    assert torch.isfinite(images.grad).all() and images.grad.abs().sum() > 0
    assert not any(t.requires_grad for t in net.buffers()) and list(net.parameters()) == []
    net.train()
    assert not any(m.training for m in net.modules())
    assert net.state_dict() == {}
    assert net.expected_keys()["fc2.weight"] == (80013, 256)
    with pytest.raises(ValueError, match=r"\(B, 1, 128, 128\)"):
        net.embed(torch.zeros(1, 3, 128, 128))


def official_checkpoint(path: Path, num_classes: int = 80013) -> OrderedDict:
    """A random LightCNN-29 v2 state dict saved as the official file is: DataParallel `module.` keys."""
    generator = torch.Generator().manual_seed(0)
    state = OrderedDict(
        (f"module.{key}", torch.randn(shape, generator=generator) * 0.01)
        for key, shape in LightCNN29v2(num_classes).expected_keys().items()
    )
    torch.save({"epoch": 10, "arch": "LightCNN-29v2", "state_dict": state}, path)
    return state


def test_lightcnn_loads_the_official_layout(tmp_path):
    path = tmp_path / LIGHTCNN_FILE
    state = official_checkpoint(path)
    net = build_face_id("lightcnn29v2", checkpoint=path)
    assert isinstance(net, LightCNN29v2) and net.num_classes == 80013
    buffers = dict(net.named_buffers())
    assert all(torch.equal(buffers[key.removeprefix("module.")], value) for key, value in state.items())
    assert net.state_dict() == {}


def test_lightcnn_wrong_checkpoint_names_the_file_and_the_keys(tmp_path):
    wrong = tmp_path / "resnet.pth"
    torch.save({"state_dict": {"module.conv1.weight": torch.zeros(64, 3, 7, 7)}}, wrong)
    with pytest.raises(ValueError, match=r"resnet\.pth.*module\.conv1\.filter\.weight"):
        LightCNN29v2.from_checkpoint(wrong)
    text = tmp_path / "notes.txt"
    text.write_text("not a checkpoint")
    with pytest.raises(ValueError, match=r"notes\.txt"):
        LightCNN29v2.from_checkpoint(text)
    with pytest.raises(FileNotFoundError, match=r"absent\.pth\.tar.*" + LIGHTCNN_FILE.replace(".", r"\.")):
        LightCNN29v2.from_checkpoint(tmp_path / "absent.pth.tar")


def test_factory_names_the_file_and_the_alternatives(tmp_path):
    assert build_face_id().embedding_dim == 128
    with pytest.raises(FileNotFoundError, match=LIGHTCNN_FILE.replace(".", r"\.") + ".*'dlib'"):
        build_face_id("lightcnn29v2")
    with pytest.raises(FileNotFoundError, match=r"face_recognition_model-weights_manifest\.json.*'lightcnn29v2'"):
        build_face_id("dlib", checkpoint=tmp_path)
    with pytest.raises(ValueError, match=r"'arcface'.*'dlib'.*'lightcnn29v2'"):
        build_face_id("arcface")


def test_fetch_face_api_skips_when_present_and_names_npm_when_missing(tmp_path, monkeypatch):
    monkeypatch.setenv("LIKENESS_CACHE", str(tmp_path))
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(RuntimeError, match=r"npm pack @vladmandic/face-api@1\.7\.15"):
        weights.fetch_face_api()
    folder = tmp_path / weights.FACE_API_DIR
    folder.mkdir()
    for name in weights.FACE_API_MEMBERS.values():
        (folder / name).write_bytes(b"")
    assert weights.fetch_face_api() == folder  # present: no npm needed, nothing downloaded
