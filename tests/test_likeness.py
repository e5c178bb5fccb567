"""Player likeness: the engine's render of regressed parameters is what gets compared with the photo."""

import numpy as np
import torch

from eval.likeness import engine_renders, player_likeness
from game import Game
from models.face_id import build_face_id


def test_own_parameters_look_more_like_the_photo_than_other_peoples():
    rng = np.random.default_rng(0)
    params = rng.uniform(-2.5, 2.5, size=(4, 267)).astype(np.float32)
    photos = engine_renders(params, 64)
    assert photos.shape == (4, 3, 64, 64) and photos.min() >= 0 and photos.max() <= 1
    face_id = build_face_id("dlib")
    right = player_likeness(photos, params, face_id)
    wrong = player_likeness(photos, params[::-1].copy(), face_id)
    assert right["face_id_cosine"] > 0.999  # identical pictures
    assert wrong["face_id_cosine"] < right["face_id_cosine"] - 0.01


def test_imitator_gap_is_reported_against_the_engine():
    params = np.zeros((2, 267), np.float32)
    photos = torch.from_numpy(Game(64).render_batch(params).transpose(0, 3, 1, 2).copy()).float() / 255

    def grey(p):
        return torch.full((len(p), 3, 64, 64), 0.5)

    result = player_likeness(photos, params, build_face_id("dlib"), imitator=grey)
    assert 0 < result["imitator_vs_engine_psnr_db"] < 30
