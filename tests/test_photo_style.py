"""The synthetic photo domain: sampling ranges, determinism, compositing by alpha, camera degradations."""

import dataclasses

import numpy as np
import pytest

from game import photo_style as ps
from game.shading import Lighting

SIZE = 64
FACE = (200, 60, 40)  # the test render's colour, straight RGB


def fake_render(render_background=(0.5, 0.5, 0.5)) -> np.ndarray:
    """A render as MeshRenderer returns it: a disc of FACE, antialiased rim, RGB composited over the background."""
    rows, cols = np.mgrid[0:SIZE, 0:SIZE] + 0.5
    alpha = np.clip(SIZE * 0.3 - np.hypot(cols - SIZE / 2, rows - SIZE / 2) + 0.5, 0.0, 1.0)[..., None]
    rgb = alpha * np.array(FACE) + (1 - alpha) * np.array(render_background) * 255
    return np.concatenate([rgb, alpha * 255], -1).round().astype(np.uint8)


def erode(mask: np.ndarray, pixels: int) -> np.ndarray:
    """`mask` shrunk by `pixels` (4-neighbourhood steps)."""
    for _ in range(pixels):
        mask = mask & np.roll(mask, 1, 0) & np.roll(mask, -1, 0) & np.roll(mask, 1, 1) & np.roll(mask, -1, 1)
    return mask


def clean(conditions, **changes):
    """The conditions with every degradation off (JPEG at 100), then `changes`."""
    neutral = dict(
        blur_sigma=0.0, noise_sigma=0.0, jpeg_quality=100, color_cast=(1.0, 1.0, 1.0), gamma=1.0, skin_texture=0.0
    )
    return dataclasses.replace(conditions, **{**neutral, **changes})


@pytest.fixture
def conditions():
    return ps.sample_photo_conditions(np.random.default_rng(3))


def test_conditions_stay_in_their_documented_ranges():
    rng = np.random.default_rng(0)
    for _ in range(300):
        c = ps.sample_photo_conditions(rng)
        assert abs(c.yaw) <= ps.YAW_DEG and abs(c.pitch) <= ps.PITCH_DEG and abs(c.roll) <= ps.ROLL_DEG
        assert ps.DISTANCE_SCALE[0] <= c.distance_scale <= ps.DISTANCE_SCALE[1]
        assert len(c.offset) == 2 and all(abs(o) <= ps.OFFSET for o in c.offset)
        assert ps.BLUR_SIGMA[0] <= c.blur_sigma <= ps.BLUR_SIGMA[1]
        assert ps.NOISE_SIGMA[0] <= c.noise_sigma <= ps.NOISE_SIGMA[1]
        assert isinstance(c.jpeg_quality, int) and ps.JPEG_QUALITY[0] <= c.jpeg_quality <= ps.JPEG_QUALITY[1]
        assert len(c.color_cast) == 3 and all(abs(g - 1.0) <= ps.COLOR_CAST for g in c.color_cast)
        assert ps.GAMMA[0] <= c.gamma <= ps.GAMMA[1]
        assert ps.SKIN_TEXTURE[0] <= c.skin_texture <= ps.SKIN_TEXTURE[1]
        assert isinstance(c.background_seed, int) and c.background_seed >= 0
        light = c.lighting
        assert isinstance(light, Lighting)
        for direction in (light.key_direction, light.fill_direction):
            assert np.linalg.norm(direction) == pytest.approx(1.0, abs=1e-6)
        assert light.key_direction[2] > 0.1  # the key is in front of the face
        assert all(0.0 <= x <= 1.0 for x in (*light.key_color, *light.fill_color, *light.ambient))


def test_sampling_is_deterministic_by_seed():
    a = [ps.sample_photo_conditions(np.random.default_rng(7)) for _ in range(2)]
    assert a[0] == a[1]
    assert a[0] != ps.sample_photo_conditions(np.random.default_rng(8))


def test_background_shape_determinism_and_variety():
    a = ps.random_background(SIZE, np.random.default_rng(1))
    assert a.shape == (SIZE, SIZE, 3) and a.dtype == np.uint8
    assert np.array_equal(a, ps.random_background(SIZE, np.random.default_rng(1)))
    others = [ps.random_background(SIZE, np.random.default_rng(s)) for s in range(2, 12)]
    assert all(not np.array_equal(a, o) for o in others)
    assert np.median([o.astype(float).std() for o in others + [a]]) > 8  # cluttered, not flat


def test_finish_shape_dtype_and_determinism(conditions):
    rgba = fake_render()
    out = ps.finish_photo(rgba, conditions, np.random.default_rng(5))
    assert out.shape == (SIZE, SIZE, 3) and out.dtype == np.uint8
    assert np.array_equal(out, ps.finish_photo(rgba, conditions, np.random.default_rng(5)))
    noisy = clean(conditions, noise_sigma=0.02)
    a, b = (ps.finish_photo(rgba, noisy, np.random.default_rng(seed)) for seed in (5, 6))
    assert not np.array_equal(a, b)


def test_uncovered_pixels_come_from_the_background_and_covered_from_the_render(conditions):
    c = clean(conditions)
    rgba = fake_render()
    out = ps.finish_photo(rgba, c, np.random.default_rng(0)).astype(float)
    background = ps.random_background(SIZE, np.random.default_rng(c.background_seed)).astype(float)
    alpha = rgba[..., 3]
    # JPEG (even at 100) subsamples chroma 2x: compare 2 px away from the rim, and the rim more loosely
    outside, inside = erode(alpha == 0, 2), erode(alpha == 255, 2)
    assert np.abs(out[outside] - background[outside]).mean() < 1.0
    assert np.abs(out[inside] - np.array(FACE)).mean() < 1.0
    # the rim mixes the face and the new background by alpha, with no trace of the render's grey; in
    # luma, which JPEG keeps at full resolution
    rim = (alpha > 40) & (alpha < 215)
    a = alpha[rim, None] / 255.0
    expected = a * np.array(FACE) + (1 - a) * background[rim]
    luma = np.array([0.299, 0.587, 0.114])
    assert rim.sum() > 10 and np.abs((out[rim] - expected) @ luma).mean() < 2.0


def test_render_background_is_taken_out(conditions):
    """Renders made over different backgrounds finish into the same photo when the caller says which."""
    c = clean(conditions)
    grey = ps.finish_photo(fake_render((0.5, 0.5, 0.5)), c, np.random.default_rng(0)).astype(int)
    black = ps.finish_photo(fake_render((0, 0, 0)), c, np.random.default_rng(0), render_background=(0, 0, 0))
    black = black.astype(int)
    assert np.abs(grey - black).mean() < 0.3 and np.abs(grey - black).max() <= 6  # rounding, through JPEG


def test_jpeg_noise_blur_cast_and_gamma_change_the_image(conditions):
    rgba = fake_render()
    base = ps.finish_photo(rgba, clean(conditions), np.random.default_rng(0)).astype(float)
    changes = [dict(jpeg_quality=40), dict(noise_sigma=0.03), dict(blur_sigma=4.0), dict(color_cast=(1.08, 1.0, 0.92))]
    for change in changes + [dict(gamma=1.25)]:
        out = ps.finish_photo(rgba, clean(conditions, **change), np.random.default_rng(0)).astype(float)
        assert np.abs(out - base).mean() > 0.5, change
    noisy = ps.finish_photo(rgba, clean(conditions, noise_sigma=0.03), np.random.default_rng(0)).astype(float)
    assert 2.0 < (noisy - base).std() < 12.0  # about 0.03 * 255 = 7.7 levels, less where it saturates


def test_skin_texture_stays_inside_the_mask(conditions):
    rgba = fake_render()
    base = ps.finish_photo(rgba, clean(conditions), np.random.default_rng(0)).astype(int)
    skin = ps.finish_photo(rgba, clean(conditions, skin_texture=0.06), np.random.default_rng(0)).astype(int)
    alpha = rgba[..., 3]
    outside = erode(alpha == 0, 2)  # JPEG's 2x2 chroma blocks and 8x8 DCT blocks straddle the rim
    assert np.abs(skin[outside] - base[outside]).mean() < 0.2
    assert np.abs(skin[alpha == 255] - base[alpha == 255]).mean() > 2.0


def test_finish_rejects_a_non_rgba_image(conditions):
    with pytest.raises(ValueError, match="RGBA"):
        ps.finish_photo(np.zeros((SIZE, SIZE, 3), np.uint8), conditions, np.random.default_rng(0))
