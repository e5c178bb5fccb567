"""The face template every layer agrees on (docs/contracts.md section 2), photo alignment to it, and the game camera."""

from __future__ import annotations

import cv2
import numpy as np

from game import camera

# Fractions of a square crop (x right, y down): right eye, left eye, nose tip, right and left mouth corner.
TEMPLATE = np.array(
    [
        [0.375, 0.440],
        [0.625, 0.440],
        [0.500, 0.580],
        [0.395, 0.700],
        [0.605, 0.700],
    ]
)
TEMPLATE_NAMES = ("right_eye", "left_eye", "nose_tip", "right_mouth", "left_mouth")
GAME_FOV_DEG = 20.0


def similarity_to_template(points: np.ndarray, size: int) -> np.ndarray:
    """2x3 least-squares similarity (Umeyama, no reflection) mapping five face points to the template at `size` px."""
    src = np.asarray(points, dtype=np.float64)
    dst = TEMPLATE * size
    src_mean, dst_mean = src.mean(0), dst.mean(0)
    src_c, dst_c = src - src_mean, dst - dst_mean
    u, singular, vt = np.linalg.svd(dst_c.T @ src_c)
    sign = np.diag([1.0, np.sign(np.linalg.det(u @ vt))])
    rotation = u @ sign @ vt
    scale = (singular * np.diag(sign)).sum() / (src_c**2).sum()
    translation = dst_mean - scale * rotation @ src_mean
    return np.hstack([scale * rotation, translation[:, None]])


def warp_photo(photo: np.ndarray, matrix: np.ndarray, size: int) -> np.ndarray:
    """Warp a uint8 photo by a 2x3 similarity (continuous pixels, centres at +0.5) to (size, size), box-filtered.

    Each output pixel is the mean of k x k bilinear samples spread evenly over its footprint in the photo,
    k = ceil(photo pixels per output pixel) (k = 1, plain bilinear, when the warp does not shrink); edges replicated.
    Why a box footprint: it is the picture a camera with output-sized cells takes, and how the game makes its
    screenshots (rendered at 2x, area-averaged); it reads only the photo under the crop (a face in a large photo
    costs its own pixels) and turns with the similarity. `python -m bench.alignment` measured, on 2048 px photos
    turned 10 degrees, PSNR (dB) against the same footprint sampled finely in float, for the astronaut x4 at
    64 / 256 px and a zone plate at 64 / 256 px: this 58.8 / 57.3 / 58.6 / 52.0; the old training warp (area
    resize, then bilinear: blurs twice) 34.7 / 50.9 / 27.0 / 18.1; the old benchmark warp (integer area resize,
    then up to 4x of bilinear shrinking: aliases) 41.7 / 54.5 / 24.2 / 20.6; a Gaussian (sigma 0.5 (d - 1)) then
    bilinear 39.7 / 55.5 / 29.1 / 24.2. The Gaussian leaves less zone-plate energy past 1.5x the output's Nyquist
    (-38 dB at 64 px; this -22 dB, no filter -0.3 dB) at the cost of blurring what it keeps. kornia is not used:
    it has no box-footprint warp, and its gaussian_blur2d + warp_affine (float tensors of the whole photo) took
    0.16-1.3 s a photo there, 3-100x OpenCV's Gaussian, for the one uint8 photo a loader worker warps at a time.
    """
    matrix = np.asarray(matrix, dtype=np.float64)
    shrink = 1.0 / np.sqrt(abs(np.linalg.det(matrix[:, :2])))  # photo pixels per output pixel
    k = max(1, int(np.ceil(shrink - 1e-6)))
    matrix = matrix * k  # photo -> the k x k finer grid of output sub-pixels
    # Our coordinates put pixel centres at +0.5, OpenCV's at integers: shift into and out of them.
    matrix[:, 2] += matrix[:, :2].sum(1) * 0.5 - 0.5
    fine = cv2.warpAffine(photo, matrix, (size * k, size * k), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return fine if k == 1 else cv2.resize(fine, (size, size), interpolation=cv2.INTER_AREA)


def align_to_template(photo: np.ndarray, points: np.ndarray, size: int) -> np.ndarray:
    """A uint8 photo warped so its five points land on the template at `size` px: training, benchmarks, the tool."""
    return warp_photo(photo, similarity_to_template(points, size), size)


def game_camera(template_points: np.ndarray, fov_deg: float = GAME_FOV_DEG) -> tuple[np.ndarray, np.ndarray]:
    """(view_proj 4x4, eye position) of the fixed frontal camera that puts the neutral head's five points on the
    template.

    template_points: (5, 3) world positions of the neutral head's right eye, left eye, nose tip and mouth corners.
    """
    pts = np.asarray(template_points, dtype=np.float64)
    target = TEMPLATE - 0.5  # template relative to the image centre, y down
    # Orthographic fit at the eyes' depth: image = scale * (x, -y) + offset.
    world = np.stack([pts[:, 0], -pts[:, 1]], 1)
    w_mean, t_mean = world.mean(0), target.mean(0)
    scale = ((world - w_mean) * (target - t_mean)).sum() / ((world - w_mean) ** 2).sum()
    centre = w_mean - t_mean / scale  # world (x, -y) seen at the image centre
    visible_height = 1.0 / scale  # world units spanning the image
    depth = pts[:2, 2].mean()
    distance = visible_height / (2 * np.tan(np.deg2rad(fov_deg) / 2))
    eye = np.array([centre[0], -centre[1], depth + distance])
    view = camera.look_at(eye, eye - np.array([0.0, 0.0, 1.0]))
    projection = camera.perspective(fov_deg, 1.0, distance * 0.5, distance * 2.0)
    return (projection @ view).astype(np.float32), eye
