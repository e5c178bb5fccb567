"""F_3d extractors: the landmark crop frames a game face, pose drops out, gradients reach the image, Deep3D loads."""

import dataclasses

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torchvision.models import resnet50

from game import Game, photo_style
from game.framing import similarity_to_template
from models.face_geometry import (
    DEEP3D_OUTPUTS,
    Deep3DCoefficients,
    LandmarkGeometry,
    build_face_geometry,
    procrustes,
)


@pytest.fixture(scope="module")
def landmarks():
    return LandmarkGeometry()


def to_tensor(images) -> torch.Tensor:
    return torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float() / 255


def test_landmark_crop_frames_a_game_render(landmarks):
    # The contract's fixed crop (docs/contracts.md section 2) on the game's own screenshots: a confident face
    # whose 468 points fill the crop without touching its edges.
    game, rng = Game(128), np.random.default_rng(0)
    params = [np.zeros(267, np.float32)] + [rng.uniform(-2.5, 2.5, 267).astype(np.float32) for _ in range(3)]
    with torch.no_grad():
        points, logits = landmarks.landmarks(to_tensor([game.render(p) for p in params]))
    assert (logits > 10).all(), logits
    span = points[..., :2].amax(1) - points[..., :2].amin(1)
    assert (points[..., :2] > 0.1 * 192).all() and (points[..., :2] < 0.9 * 192).all()
    assert (span > 0.5 * 192).all()  # the face fills the crop


def random_rotation(seed: int) -> torch.Tensor:
    q = torch.linalg.qr(torch.randn(3, 3, generator=torch.Generator().manual_seed(seed)))[0]
    return q * torch.sign(torch.linalg.det(q))  # a proper rotation


def test_procrustes_removes_rotation_scale_and_shift(landmarks):
    points = landmarks.reference[None] + 0.05 * torch.randn(1, 468, 3, generator=torch.Generator().manual_seed(0))
    moved = 3.0 * points @ random_rotation(1).T + torch.tensor([10.0, -4.0, 2.0])
    assert torch.allclose(procrustes(points, landmarks.reference), procrustes(moved, landmarks.reference), atol=1e-5)
    other = landmarks.reference[None] + 0.05 * torch.randn(1, 468, 3, generator=torch.Generator().manual_seed(2))
    assert (procrustes(points, landmarks.reference) - procrustes(other, landmarks.reference)).abs().max() > 0.01


def umeyama_svd(points: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """The SVD Procrustes that models.face_geometry.procrustes replaced (ONNX has no SVD): Umeyama's solution with
    the reflection fix, as it stood in the code."""
    centred = points - points.mean(1, keepdim=True)
    u, singular, vh = torch.linalg.svd(centred.transpose(1, 2) @ reference)
    sign = torch.sign(torch.linalg.det(vh.transpose(1, 2) @ u.transpose(1, 2)))
    signs = torch.stack([torch.ones_like(sign), torch.ones_like(sign), sign], -1)
    rotation = vh.transpose(1, 2) @ torch.diag_embed(signs) @ u.transpose(1, 2)
    scale = (singular * signs).sum(-1) / centred.square().sum((1, 2))
    return scale[:, None, None] * centred @ rotation.transpose(1, 2)


def point_sets(kind: str, reference: torch.Tensor) -> torch.Tensor:
    """(4, 468, 3) float64 point sets to align to `reference`, each moved by a similarity: noisy copies of the face,
    anisotropic random clouds, and depth-mirrored faces (whose best proper rotation needs the reflection fix)."""
    g = torch.Generator().manual_seed(7)
    if kind == "cloud":
        base = torch.randn(4, 468, 3, generator=g, dtype=torch.float64) * torch.tensor([3.0, 2.0, 0.5]).double()
    else:
        base = reference[None] + 0.05 * torch.randn(4, 468, 3, generator=g, dtype=torch.float64)
        if kind == "mirrored":  # depth flipped: no rotation undoes it
            base = base * torch.tensor([1.0, 1.0, -1.0]).double()
    rotations = torch.stack([random_rotation(seed).double() for seed in range(4)])
    return 40.0 * base @ rotations.transpose(1, 2) + torch.tensor([90.0, 100.0, -5.0]).double()


@pytest.mark.parametrize("kind", ["face", "cloud", "mirrored"])
def test_procrustes_equals_the_svd_solution_and_its_gradient(landmarks, kind):
    # The quaternion form exists so the landmark path exports to ONNX; it must be the same function: values
    # and gradients equal to Umeyama's SVD solution, including where the SVD's reflection fix is needed.
    reference = landmarks.reference.double()
    points = point_sets(kind, reference).requires_grad_()
    ours, svd = procrustes(points, reference), umeyama_svd(points, reference)
    assert (ours - svd).abs().max() < 1e-9
    if kind == "mirrored":  # the plain SVD rotation would be a reflection here: the fix mattered
        u, _, vh = torch.linalg.svd((points - points.mean(1, keepdim=True)).transpose(1, 2) @ reference)
        assert (torch.linalg.det(vh.transpose(1, 2) @ u.transpose(1, 2)) < 0).all()
    weights = torch.randn(ours.shape, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    (grad_ours,) = torch.autograd.grad((ours * weights).sum(), points)
    (grad_svd,) = torch.autograd.grad((svd * weights).sum(), points)
    assert (grad_ours - grad_svd).abs().max() < 1e-8 * grad_svd.abs().max()
    # In float32, as LandmarkGeometry runs it: the same to float32 round-off.
    single = points.detach().float()
    assert procrustes(single, reference.float()).dtype == torch.float32
    assert (procrustes(single, reference.float()) - umeyama_svd(single, reference.float())).abs().max() < 1e-4


def photos_at_yaw(size: int, params: np.ndarray, yaws, monkeypatch) -> list[np.ndarray]:
    """The same character photographed at several head yaws (all else fixed), aligned to the template."""
    base = photo_style.sample_photo_conditions(np.random.default_rng(5))
    base = dataclasses.replace(
        base,
        pitch=0.0,
        roll=0.0,
        offset=(0.0, 0.0),
        distance_scale=1.0,
        blur_sigma=0.0,
        noise_sigma=0.0,
        color_cast=(1.0, 1.0, 1.0),
        gamma=1.0,
        skin_texture=0.0,
    )
    game, photos = Game(size, "photo"), []
    for yaw in yaws:
        conditions = dataclasses.replace(base, yaw=yaw)
        monkeypatch.setattr(photo_style, "sample_photo_conditions", lambda rng, c=conditions: c)
        image, points = game.render_with_points(params, np.random.default_rng(0))
        photos.append(
            cv2.warpAffine(
                image,
                similarity_to_template(points, size),
                (size, size),
                flags=cv2.INTER_LINEAR,
                borderMode=cv2.BORDER_REFLECT,
            )
        )
    return photos


def pose_to_identity_ratio(features: torch.Tensor) -> float:
    """(faces, yaws, D) with the frontal view in the middle: MSE of one face across poses / between faces."""
    middle = features.shape[1] // 2
    faces, poses = range(features.shape[0]), [k for k in range(features.shape[1]) if k != middle]
    same = np.mean([F.mse_loss(features[i, k], features[i, middle]).item() for i in faces for k in poses])
    different = np.mean([F.mse_loss(features[i, middle], features[j, middle]).item() for i in faces for j in range(i)])
    return same / different


def test_pose_drops_out_on_rendered_faces(landmarks, monkeypatch):
    # Three characters, each at yaw -12, 0, +12 degrees: one face at two poses must be much closer than two
    # faces at one pose, and the alignment must help (measured ratios, engine v2: 0.31 aligned, 0.38 raw; engine
    # v1, whose bald heads on a plain neck left more of the pose in the raw landmarks: 0.30 aligned, 0.53 raw).
    rng = np.random.default_rng(0)
    faces = [rng.uniform(-2.5, 2.5, 267).astype(np.float32) for _ in range(3)]
    images = to_tensor([photo for p in faces for photo in photos_at_yaw(128, p, (-12.0, 0.0, 12.0), monkeypatch)])
    with torch.no_grad():
        aligned = landmarks(images).reshape(3, 3, -1)
        raw, _ = landmarks.landmarks(images)
    aligned_ratio = pose_to_identity_ratio(aligned)
    raw_ratio = pose_to_identity_ratio((raw - raw.mean(1, keepdim=True)).reshape(3, 3, -1))
    assert aligned_ratio < 0.4, aligned_ratio
    assert aligned_ratio < 0.9 * raw_ratio, (aligned_ratio, raw_ratio)


def test_landmark_gradients_reach_the_image_not_the_net(landmarks):
    images = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(0)).requires_grad_(True)
    features = landmarks(images)
    assert features.shape == (2, 1404) and torch.isfinite(features).all()
    features.square().mean().backward()
    assert torch.isfinite(images.grad).all() and images.grad.abs().sum() > 0
    assert list(landmarks.parameters()) == [] and landmarks.state_dict() == {}  # weights come from the .tflite
    landmarks.train()
    assert not any(m.training for m in landmarks.modules())


def reconnet_state(seed: int = 0) -> dict[str, torch.Tensor]:
    """Random weights in Deep3DFaceRecon_pytorch's ReconNetWrapper layout (backbone.* + seven 1x1 conv heads)."""
    torch.manual_seed(seed)
    backbone = {f"backbone.{k}": v for k, v in resnet50(weights=None).state_dict().items() if not k.startswith("fc.")}
    heads = {}
    for i, outputs in enumerate(DEEP3D_OUTPUTS):
        heads[f"final_layers.{i}.weight"] = 0.01 * torch.randn(outputs, 2048, 1, 1)
        heads[f"final_layers.{i}.bias"] = torch.randn(outputs)
    return backbone | heads


def test_deep3d_loads_the_official_layout_and_keeps_id_and_expression(tmp_path):
    state = reconnet_state()
    path = tmp_path / "epoch_20.pth"
    torch.save({"net_recon": state, "epoch": 20}, path)
    extractor = build_face_geometry("deep3d", path)
    assert isinstance(extractor, Deep3DCoefficients) and extractor.state_dict() == {}
    images = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(0)).requires_grad_(True)
    features = extractor(images)
    assert features.shape == (1, 144)
    # Reference: ReconNetWrapper's forward, backbone -> pooled 2048-d -> the seven 1x1 convs concatenated.
    with torch.device("meta"):
        backbone = resnet50(weights=None)
    backbone.fc = torch.nn.Identity()
    backbone.load_state_dict(
        {k.removeprefix("backbone."): v for k, v in state.items() if k.startswith("backbone.")}, assign=True
    )
    with torch.no_grad():
        pooled = backbone.eval()(extractor.crop(images))[:, :, None, None]
        expected = torch.cat(
            [
                F.conv2d(pooled, state[f"final_layers.{i}.weight"], state[f"final_layers.{i}.bias"])
                for i in range(len(DEEP3D_OUTPUTS))
            ],
            1,
        ).flatten(1)
    assert torch.allclose(features.detach(), expected[:, :144], atol=1e-4)  # identity 0:80, expression 80:144
    features.sum().backward()
    assert images.grad.abs().sum() > 0
    extractor.train()
    assert not any(m.training for m in extractor.modules())  # batch norm keeps its running statistics


def test_deep3d_torchvision_layout_loads_too(tmp_path):
    torch.manual_seed(0)
    net = resnet50(weights=None, num_classes=257)
    torch.save({"net_recon": {f"module.{k}": v for k, v in net.state_dict().items()}}, tmp_path / "tv.pth")
    extractor = Deep3DCoefficients.from_checkpoint(tmp_path / "tv.pth")
    assert torch.equal(extractor.net.fc.weight, net.fc.weight)


def test_deep3d_wrong_files_name_the_file_and_the_layout(tmp_path):
    torch.save({"net": {"conv.weight": torch.zeros(1)}}, tmp_path / "other.pth")
    with pytest.raises(ValueError, match=r"other\.pth.*net_recon.*alternatives: 'landmarks'"):
        build_face_geometry("deep3d", tmp_path / "other.pth")
    state = reconnet_state()
    state.pop("final_layers.6.bias")
    state["final_layers.0.weight"] = torch.zeros(81, 2048, 1, 1)
    torch.save({"net_recon": state}, tmp_path / "broken.pth")
    with pytest.raises(
        ValueError,
        match=r"broken\.pth does not hold Deep3D weights.*Missing: \['final_layers\.6\.bias"
        r".*final_layers\.0\.weight: \(81, 2048, 1, 1\), expected \(80, 2048, 1, 1\)",
    ):
        Deep3DCoefficients.from_checkpoint(tmp_path / "broken.pth")
    with pytest.raises(FileNotFoundError, match=r"missing\.pth.*alternatives"):
        build_face_geometry("deep3d", tmp_path / "missing.pth")
    with pytest.raises(FileNotFoundError, match="Deep3D needs checkpoint"):
        build_face_geometry("deep3d")
    with pytest.raises(ValueError, match="unknown face-geometry extractor 'bfm'.*'deep3d'"):
        build_face_geometry("bfm")
