"""Screenshot generation: deterministic by seed, resumable, and the on-disk format of docs/contracts.md."""

import cv2
import numpy as np
import pytest

from game import framing
from game import parameters as P
from game.dataset import generate, image_path, read_manifest
from game.engine import Game


def images(root, count, fmt):
    return [cv2.imread(str(image_path(root, i, fmt)), cv2.IMREAD_UNCHANGED) for i in range(count)]


@pytest.mark.parametrize("style", ["game", "photo"])
def test_generate_writes_the_contract_format(tmp_path, style):
    root = generate(
        tmp_path / style, 6, size=32, style=style, seed=3, renders_per_identity=2, workers=1, progress=False
    )
    manifest = read_manifest(root)
    assert manifest["complete"] and manifest["count"] == 6 and manifest["size"] == 32
    assert manifest["format_version"] == 1 and manifest["parameter_table_version"] == P.TABLE_VERSION
    params = np.load(root / "parameters.npy")
    assert params.shape == (6, 267) and params.dtype == np.float32
    assert params.min() >= -2.5 and params.max() <= 2.5
    fmt = manifest["image_format"]
    assert all(img is not None and img.shape == (32, 32, 3) for img in images(root, 6, fmt))
    if style == "photo":
        identities = np.load(root / "identities.npy")
        assert identities.tolist() == [0, 0, 1, 1, 2, 2]
        assert np.array_equal(params[0], params[1]) and not np.array_equal(params[1], params[2])


def test_same_seed_same_files_other_seed_other_files(tmp_path):
    a = generate(tmp_path / "a", 4, size=32, seed=7, workers=1, progress=False)
    b = generate(tmp_path / "b", 4, size=32, seed=7, workers=2, progress=False)
    c = generate(tmp_path / "c", 4, size=32, seed=8, workers=1, progress=False)
    assert np.array_equal(np.load(a / "parameters.npy"), np.load(b / "parameters.npy"))
    for x, y in zip(images(a, 4, "png"), images(b, 4, "png")):
        assert np.array_equal(x, y)
    assert not np.array_equal(np.load(a / "parameters.npy"), np.load(c / "parameters.npy"))


def test_interrupted_generation_resumes_without_holes_or_duplicates(tmp_path):
    reference = generate(tmp_path / "ref", 7, size=32, style="photo", seed=1, workers=1, progress=False)
    root = generate(tmp_path / "run", 7, size=32, style="photo", seed=1, workers=1, progress=False, limit=3)
    assert not read_manifest(root)["complete"]
    # A render killed mid-write leaves only a .part file, which the resume ignores.
    (root / "images" / "0000005.jpg.part").write_bytes(b"half a jpeg")
    mtimes = {p.name: p.stat().st_mtime_ns for p in (root / "images").glob("*.jpg")}
    assert len(mtimes) == 3
    generate(tmp_path / "run", 7, size=32, style="photo", seed=1, workers=1, progress=False)
    assert read_manifest(root)["complete"]
    assert sorted(p.name for p in (root / "images").glob("*.jpg")) == [f"{i:07d}.jpg" for i in range(7)]
    assert all((root / "images" / name).stat().st_mtime_ns == t for name, t in mtimes.items()), "done files re-rendered"
    for x, y in zip(images(reference, 7, "jpg"), images(root, 7, "jpg")):
        assert np.array_equal(x, y)


def test_resume_with_other_settings_is_refused(tmp_path):
    generate(tmp_path / "d", 2, size=32, seed=0, workers=1, progress=False, limit=1)
    with pytest.raises(ValueError, match="other settings"):
        generate(tmp_path / "d", 2, size=32, seed=1, workers=1, progress=False)


def test_manifest_errors_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="manifest.json"):
        read_manifest(tmp_path)
    (tmp_path / "manifest.json").write_text("{not json")
    with pytest.raises(ValueError, match="manifest.json"):
        read_manifest(tmp_path)


def test_game_camera_puts_the_neutral_face_on_the_template():
    game = Game(256)
    _, points = game.render_with_points(np.zeros(267, np.float32))
    # Eyes and nose land on the template within a few pixels (mouth corners depend on the face's width).
    assert np.abs(points[:3] - framing.TEMPLATE[:3] * 256).max() < 6
    assert np.abs(points - framing.TEMPLATE * 256).mean() < 6


def test_similarity_to_template_recovers_a_known_transform():
    angle, scale, shift = np.deg2rad(12), 1.7, np.array([30.0, -12.0])
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    template = framing.TEMPLATE * 128
    photo_points = (template - shift) @ np.linalg.inv(scale * rotation).T
    matrix = framing.similarity_to_template(photo_points, 128)
    mapped = photo_points @ matrix[:, :2].T + matrix[:, 2]
    assert np.allclose(mapped, template, atol=1e-6)


def test_render_is_stable_against_a_small_reference():
    """The neutral face at 32 px: colour statistics of the screenshot stay where they were measured."""
    image = Game(32).render(np.zeros(267, np.float32)).astype(np.float64) / 255
    background = np.array([0.62, 0.66, 0.72])
    corners = image[[0, 0, -1, -1], [0, -1, 0, -1]]
    assert np.abs(corners - background).max() < 2 / 255
    centre = image[12:20, 12:20].mean((0, 1))
    assert centre[0] > centre[2]  # skin is warmer than the blue-grey backdrop


def test_photo_style_needs_a_generator_and_differs_per_photo():
    game = Game(32, "photo")
    params = np.zeros(267, np.float32)
    with pytest.raises(ValueError, match="Generator"):
        game.render(params)
    a = game.render(params, np.random.default_rng(0))
    b = game.render(params, np.random.default_rng(0))
    c = game.render(params, np.random.default_rng(1))
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_photo_points_match_the_rendered_photo(tmp_path):
    root = generate(
        tmp_path / "p", 3, size=64, style="photo", seed=2, renders_per_identity=1, workers=1, progress=False
    )
    points = np.load(root / "points.npy")
    assert points.shape == (3, 5, 2)
    game = Game(64, "photo")
    params = np.load(root / "parameters.npy")
    from game.dataset import row_rng

    _, rendered = game.render_with_points(params[1], row_rng(2, 1))
    assert np.allclose(points[1], rendered, atol=1e-4)
    # Eyes above the mouth corners, as on the template (poses stay within +-15 degrees of pitch).
    assert (points[:, :2, 1] < points[:, 3:, 1]).all()


def test_benchmark_photos_with_extras_keep_identity_and_points(tmp_path):
    extras = {"expressions": 1.0, "glasses": 1.0, "occluders": 1.0}
    root = generate(
        tmp_path / "x",
        4,
        size=64,
        style="photo",
        seed=5,
        renders_per_identity=2,
        workers=1,
        progress=False,
        prior="realistic",
        extras=extras,
    )
    manifest = read_manifest(root)
    assert manifest["prior"] == "realistic" and manifest["extras"] == extras
    params = np.load(root / "parameters.npy")
    assert np.array_equal(params[0], params[1])  # ground truth is the identity, not the expression
    from game.dataset import row_rng
    from game.photo_extras import PhotoExtras

    plain, fancy = Game(64, "photo"), Game(64, "photo", extras=PhotoExtras(**extras))
    image_plain, points_plain = plain.render_with_points(params[0], row_rng(5, 0))
    image_fancy, points_fancy = fancy.render_with_points(params[0], row_rng(5, 0))
    assert not np.array_equal(image_plain, image_fancy)
    assert np.allclose(np.load(root / "points.npy")[0], points_fancy, atol=1e-4)
    assert np.abs(points_plain - points_fancy).max() < 8  # same pose and camera; only the expression moved


def test_realistic_prior_is_narrower_and_correlated_within_groups():
    rng = np.random.default_rng(0)
    uniform, realistic = P.sample_prior(rng, 4000, "uniform"), P.sample_prior(rng, 4000, "realistic")
    assert realistic.std() < 0.75 * uniform.std()
    groups = np.array([p.group for p in P.table()])
    eyes = np.flatnonzero(groups == "eyes")
    within = np.corrcoef(realistic[:, eyes].T)[np.triu_indices(len(eyes), 1)]
    assert np.abs(within).mean() > 0.05 > np.abs(np.corrcoef(uniform[:, eyes].T)[np.triu_indices(len(eyes), 1)]).mean()
    with pytest.raises(ValueError, match="unknown prior"):
        P.sample_prior(rng, 1, "gaussian")


def test_neutral_mix_prior_keeps_half_the_rows_uniform_and_leaves_sliders_at_neutral_in_the_rest():
    # One row per generator, as game.dataset draws them.
    values = np.concatenate([P.sample_prior(np.random.default_rng([0, i]), 1, "neutral_mix") for i in range(2000)])
    assert P.validate(values).shape == (2000, P.NUM_PARAMETERS)
    at_neutral = (values == 0).mean(1)
    full, mixed = values[at_neutral == 0], at_neutral[at_neutral > 0]
    assert 0.45 < len(full) / len(values) < 0.55 and abs(full.std() - 5 / np.sqrt(12)) < 0.02  # U[-2.5, 2.5]
    assert 0.4 < mixed.mean() < 0.6 and mixed.max() > 0.95


def test_rendering_then_importing_the_training_stack_does_not_crash(run_cli):
    """triton and Mesa's llvmpipe both bundle LLVM; the renderer loads triton first so any import order works."""
    code = (
        "import numpy as np\nfrom game.engine import Game\nGame(32).render(np.zeros(267, np.float32))\n"
        "import models.vqvae2\nprint('ok')"
    )
    done = run_cli("-c", code, timeout=300)
    assert "ok" in done.stdout, done.stderr[-2000:]
