"""BlazeFaceDetector against the reference TFLite runtime, its anchors, and faces found in real photos."""

import numpy as np
import pytest
import torch
from skimage import data

from models.face_detector import BlazeFaceDetector, letterbox, ssd_anchors
from models.weights import mediapipe_asset


@pytest.fixture(scope="module")
def detector():
    return BlazeFaceDetector()


def test_anchors_follow_mediapipe_short_range_layout():
    anchors = ssd_anchors()
    assert anchors.shape == (896, 2)
    # Stride 8: a 16x16 grid, 2 anchors per cell, row by row; then strides 16 x 3 layers: 8x8, 6 per cell.
    assert torch.allclose(anchors[:2], torch.tensor([[1 / 32, 1 / 32]] * 2))
    assert torch.allclose(anchors[2], torch.tensor([3 / 32, 1 / 32]))
    assert torch.allclose(anchors[512:518], torch.tensor([[1 / 16, 1 / 16]] * 6))
    assert torch.allclose(anchors[-1], torch.tensor([15 / 16, 15 / 16]))


def test_raw_outputs_match_litert(detector):
    litert = pytest.importorskip("ai_edge_litert.interpreter")
    interpreter = litert.Interpreter(model_path=str(mediapipe_asset("face_detection_short_range.tflite")))
    interpreter.allocate_tensors()
    face = torch.from_numpy(letterbox(data.astronaut())[0]).permute(2, 0, 1).float() / 255
    noise = torch.rand(3, 128, 128, generator=torch.Generator().manual_seed(0))
    images = torch.stack([face, noise])
    with torch.no_grad():
        regressors, logits = detector(images)
    for image, ours_r, ours_l in zip(images, regressors, logits):
        # The model's own input range is [-1, 1]; the detector takes [0, 1] like every network here.
        nhwc = (image * 2 - 1).permute(1, 2, 0)[None].numpy()
        interpreter.set_tensor(interpreter.get_input_details()[0]["index"], nhwc)
        interpreter.invoke()
        outputs = {o["name"]: interpreter.get_tensor(o["index"]) for o in interpreter.get_output_details()}
        assert np.abs(ours_r.numpy() - outputs["regressors"][0]).max() < 1e-3  # measured: 7e-5 (values up to 135)
        assert np.abs(ours_l.numpy() - outputs["classificators"][0, :, 0]).max() < 1e-3


def test_astronaut_has_one_face_around_her_face(detector):
    (faces,) = detector.detect([data.astronaut()])
    assert len(faces) == 1
    face = faces[0]
    assert face.score > 0.8
    x0, y0, x1, y1 = face.box  # her face spans about x 175-275, y 60-180 of the 512 x 512 photo
    assert x0 < 200 and x1 > 250 and y0 < 100 and y1 > 160  # holds eyes, nose and mouth (measured 178-272, 81-175)
    assert x0 > 155 and x1 < 295 and y0 > 40 and y1 < 200  # and not much more
    right_eye, left_eye, nose = face.keypoints[:3]
    assert right_eye[0] < nose[0] < left_eye[0]  # the subject's right eye is on the viewer's left
    assert x0 < nose[0] < x1 and y0 < nose[1] < y1


def test_letterbox_maps_back_to_the_photo(detector):
    photo = data.astronaut()[:300, 100:400]  # her face fills a third of it: well inside the short range
    grey = lambda h, w: np.full((h, w, 3), 90, np.uint8)  # noqa: E731
    wide = np.concatenate([grey(300, 60), photo, grey(300, 40)], 1)
    tall = np.concatenate([grey(20, 300), photo, grey(100, 300)], 0)
    faces = detector.detect([photo, wide, tall])
    assert [len(f) for f in faces] == [1, 1, 1]
    # Same face, same place in photo pixels, whatever the bars (one 128 px input pixel is 2.3 to 3.1 photo px).
    (ref,), (w,), (t,) = faces
    assert np.abs(w.box - ref.box - [60, 0, 60, 0]).max() < 6  # measured: 3.9
    assert np.abs(t.box - ref.box - [0, 20, 0, 20]).max() < 6  # 2.1
    assert np.abs(w.keypoints - ref.keypoints - [60, 0]).max() < 6  # 4.4
    assert np.abs(t.keypoints - ref.keypoints - [0, 20]).max() < 6  # 3.4


def test_no_face_in_noise_or_flat_colour_and_two_faces_side_by_side(detector):
    noise = np.random.default_rng(0).integers(0, 256, (240, 320, 3), dtype=np.uint8)
    flat = np.full((240, 320, 3), 128, np.uint8)
    face = data.astronaut()[0:300, 100:350]
    two = np.ascontiguousarray(np.concatenate([face, face[:, ::-1]], 1))
    found = detector.detect([noise, flat, two])
    assert [len(f) for f in found] == [0, 0, 2]
    centres = sorted((f.box[0] + f.box[2]) / 2 for f in found[2])
    assert centres[0] < 250 < centres[1]  # one face in each half
