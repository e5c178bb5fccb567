"""The face template every layer agrees on (docs/contracts.md section 2) and the game camera framed to it."""

from __future__ import annotations

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
