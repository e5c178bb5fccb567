"""The one photo-to-template warp (game.framing.warp_photo / align_to_template) and that every path uses it."""

import cv2
import numpy as np
import pytest
from PIL import Image
from skimage import data

from game import framing
from game.framing import TEMPLATE, align_to_template, similarity_to_template, warp_photo


def test_identity_returns_the_photo():
    photo = np.random.default_rng(0).integers(0, 256, (48, 48, 3), dtype=np.uint8)
    assert np.array_equal(warp_photo(photo, np.eye(2, 3), 48), photo)


@pytest.mark.parametrize("scale", [0.25, 0.6, 2.0])
def test_scale_and_shift_put_a_known_point_at_its_known_place(scale):
    """A Gaussian spot at photo (x, y) lands at scale * (x, y) + shift, centres at +0.5, shrinking or growing."""
    point, size = np.array([101.3, 77.8]), 64 if scale < 1 else 256
    shift = size / 2 + np.array([0.37, -0.21]) - scale * point  # lands mid-crop, off the pixel grid
    ys, xs = np.mgrid[0:200, 0:200] + 0.5
    spot = np.exp(-((xs - point[0]) ** 2 + (ys - point[1]) ** 2) / (2 * (3.0 / scale) ** 2))
    photo = (255 * spot + 0.5).astype(np.uint8)
    out = warp_photo(photo, np.array([[scale, 0, shift[0]], [0, scale, shift[1]]]), size)
    weights = out.astype(np.float64)
    oy, ox = np.mgrid[0 : out.shape[0], 0 : out.shape[1]] + 0.5
    found = np.array([(weights * ox).sum(), (weights * oy).sum()]) / weights.sum()
    assert np.abs(found - (scale * point + shift)).max() < 0.05, found - (scale * point + shift)


def test_template_points_land_on_the_template():
    points = TEMPLATE * 300 + [40.0, 25.0]  # a 300 px face in a larger photo
    assert np.allclose(similarity_to_template(points, 64) @ np.append(points[0], 1), TEMPLATE[0] * 64)
    assert align_to_template(np.zeros((400, 400, 3), np.uint8), points, 64).shape == (64, 64, 3)


def _zone_plate_energy(size: int = 64, source: int = 512):
    """(energy past 1.5x the output's Nyquist, correlation with the truth below half of it) for warp_photo and
    plain bilinear, warping a zone plate 8x smaller and turned 10 degrees."""
    k = np.pi / (2 * np.hypot(source / 2, source / 2)) * 0.8  # under the photo's own Nyquist everywhere
    ys, xs = np.mgrid[0:source, 0:source] + 0.5 - source / 2
    photo = (255 * (0.5 + 0.5 * np.cos(k * (xs**2 + ys**2))) + 0.5).astype(np.uint8)
    a, scale = np.deg2rad(10), size / source
    rotation = scale * np.array([[np.cos(a), np.sin(a)], [-np.sin(a), np.cos(a)]])
    matrix = np.hstack([rotation, (size / 2 - rotation @ [source / 2, source / 2])[:, None]])
    oy, ox = np.mgrid[0:size, 0:size] + 0.5 - size / 2
    radius = np.hypot(ox, oy) / scale  # photo pixels from the centre
    frequency = 2 * k * radius / scale  # radians per output pixel
    past, low = (frequency > 1.5 * np.pi) & (radius < source / 2), frequency < 0.5 * np.pi
    truth = np.cos(k * radius**2)
    opencv = matrix.copy()
    opencv[:, 2] += opencv[:, :2].sum(1) * 0.5 - 0.5
    plain = cv2.warpAffine(photo, opencv, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    result = {}
    for name, image in (("box", warp_photo(photo, matrix, size)), ("plain", plain)):
        image = image.astype(np.float64)
        energy = np.mean((image[past] - 127.5) ** 2) / (0.5 * 127.5**2)
        result[name] = (10 * np.log10(energy), np.corrcoef(image[low], truth[low])[0, 1])
    return result


def test_box_footprint_cuts_zone_plate_aliasing_and_keeps_the_pass_band():
    result = _zone_plate_energy()
    assert result["plain"][0] > -3  # bilinear shrinking 8x passes the rings at full strength, aliased
    assert result["box"][0] < result["plain"][0] - 12, result
    assert result["box"][1] > 0.95, result  # rings well under Nyquist survive


def test_training_benchmarks_and_the_photo_tool_use_the_one_warp(tmp_path, monkeypatch):
    """Spy on game.framing.warp_photo: the training loader, benchmark reader and photo tool return its output."""
    from datamodules.photos import PhotoDataset, PhotoSet
    from eval.align import align_faces
    from eval.benchmarks import Benchmark

    calls = []

    def spy(photo, matrix, size):
        calls.append((np.array(matrix), size, warp_photo(photo, matrix, size)))
        return calls[-1][2]

    monkeypatch.setattr(framing, "warp_photo", spy)
    photo = data.astronaut()
    path = tmp_path / "astronaut.png"
    Image.fromarray(photo).save(path)
    points = np.array([[195.0, 110.0], [262.0, 108.0], [232.0, 150.0], [205.0, 190.0], [255.0, 188.0]])

    photos = PhotoSet(tmp_path, "folders", [path], np.zeros(1, np.int64), np.array(["train"]), points[None])
    item = PhotoDataset(photos, [0], 64)[0]["image"].permute(1, 2, 0).numpy()
    assert len(calls) == 1 and np.array_equal(item, calls[-1][2])

    bench = Benchmark("b", 64, [path], [points], None, np.zeros((0, 2)), np.zeros(0, bool), np.zeros(0), "test")
    assert np.array_equal(bench.image(0), calls[-1][2]) and len(calls) == 2

    (face,) = align_faces(photo, 64)
    assert len(calls) == 3 and face.image is calls[-1][2]
    assert np.allclose(calls[-1][0], similarity_to_template(face.points, 64)) and calls[-1][1] == 64
    for matrix, size, _ in calls[:2]:
        assert size == 64 and np.allclose(matrix, similarity_to_template(points, 64))
