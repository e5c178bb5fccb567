"""FaceMeshNet against the reference TFLite runtime, and the sense of its landmarks on a real face."""

import numpy as np
import pytest
import torch
from skimage import data

from models.face_mesh import ASTRONAUT_BOX, FaceMeshNet, astronaut_landmarks, crop_square
from models.weights import mediapipe_asset


@pytest.fixture(scope="module")
def net():
    return FaceMeshNet()


@pytest.fixture(scope="module")
def face():
    return crop_square(data.astronaut(), ASTRONAUT_BOX)  # (3, 192, 192) in [0, 1]


def test_matches_litert_on_face_and_noise(net, face):
    litert = pytest.importorskip("ai_edge_litert.interpreter")
    interpreter = litert.Interpreter(model_path=str(mediapipe_asset("face_landmark.tflite")))
    interpreter.allocate_tensors()
    noise = torch.rand(3, 192, 192, generator=torch.Generator().manual_seed(0))
    for image in (face, noise):
        interpreter.set_tensor(interpreter.get_input_details()[0]["index"], image.permute(1, 2, 0)[None].numpy())
        interpreter.invoke()
        outputs = {o["name"]: interpreter.get_tensor(o["index"]) for o in interpreter.get_output_details()}
        with torch.no_grad():
            landmarks, logit = net(image[None])
        assert np.abs(landmarks.numpy().reshape(-1) - outputs["conv2d_21"].reshape(-1)).max() < 1e-3
        assert np.abs(logit.numpy() - outputs["conv2d_31"].reshape(-1)).max() < 1e-3


def test_gradients_reach_input_but_not_the_net(net, face):
    images = torch.stack([face, face.flip(-1)]).requires_grad_(True)
    landmarks, logit = net(images)
    (landmarks.square().mean() + logit.sum()).backward()
    assert torch.isfinite(images.grad).all()
    assert (images.grad != 0).float().mean() > 0.9
    assert not any(t.requires_grad for t in [*net.parameters(), *net.buffers()])
    net.train()
    assert not net.training and not any(m.training for m in net.modules())
    assert net.state_dict() == {}  # weights come from the tflite file, never from a checkpoint


@pytest.mark.parametrize("shape", [(3, 192, 192), (1, 3, 128, 128), (1, 192, 192, 3)])
def test_wrong_shape_names_the_expected_one(net, shape):
    with pytest.raises(ValueError, match=r"\(B, 3, 192, 192\)"):
        net(torch.zeros(shape))


def test_landmarks_make_sense_on_the_astronaut(net, face):
    with torch.no_grad():
        (landmarks, mirrored), logits = net(torch.stack([face, face.flip(-1)]))
    assert (logits > 10).all()  # sigmoid(logit) is MediaPipe's face-presence score; 10 is far past its 0.5
    assert ((landmarks[:, :2] > 0) & (landmarks[:, :2] < 192)).all()
    # A mirrored face is the same face with sides swapped: the net still names points anatomically, so the
    # subject's right outer eye corner (33) in the mirror sits where the left one (263) was, reflected.
    # Pairs: outer and inner eye corners, mouth corners, cheek edges; then midline points (nose tip, chin, forehead).
    pairs = [(33, 263), (133, 362), (61, 291), (234, 454), (1, 1), (152, 152), (10, 10)]
    pairs += [(b, a) for a, b in pairs]
    here, there = [a for a, _ in pairs], [b for _, b in pairs]
    assert torch.allclose(mirrored[here, 0], 192 - landmarks[there, 0], atol=5)  # measured: up to 3.4 px
    assert torch.allclose(mirrored[here, 1], landmarks[there, 1], atol=5)


def test_astronaut_landmarks_in_image_pixels():
    points = astronaut_landmarks()
    assert points.shape == (468, 3) and points.dtype == np.float32
    # The face of the 512 x 512 astronaut spans about x 178-274, y 68-177; eyes above the nose tip above the chin.
    assert (points[:, 0] > 160).all() and (points[:, 0] < 290).all()
    assert (points[:, 1] > 50).all() and (points[:, 1] < 195).all()
    assert points[33, 1] < points[1, 1] < points[152, 1] and points[33, 0] < points[1, 0] < points[263, 0]
    assert 40 < points[263, 0] - points[33, 0] < 90  # outer eye corners, in image pixels
    assert np.ptp(points[:, 2]) < 2 * np.ptp(points[:, 0])  # z in x's scale, not in crop units
