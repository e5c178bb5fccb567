"""Camera maths for the game's renderer: projection, view and head-pose matrices, and projection to pixels.

Conventions (docs/contracts.md section 3): world x to the subject's left (viewer's right), y up, z towards
the camera. Matrices follow OpenGL: column vectors, `clip = P @ V @ [x, y, z, 1]`, NDC in [-1, 1]^3, the
camera looks down its -z axis.

Pixel coordinates (`project`) are continuous: x to the right, y down, origin at the top-left corner of the
image; pixel (column c, row r) covers [c, c+1) x [r, r+1) and its centre is (c + 0.5, r + 0.5). So a point
at template fraction (fx, fy) of contracts section 2 lies at (fx * S, fy * S). (OpenCV puts pixel centres
on integers: subtract 0.5 to get its coordinates.)
"""

from __future__ import annotations

import numpy as np


def perspective(fov_y_deg: float, aspect: float, near: float, far: float) -> np.ndarray:
    """OpenGL perspective projection (4x4 float32) with vertical field of view `fov_y_deg` degrees."""
    if not (0.0 < fov_y_deg < 180.0):
        raise ValueError(f"perspective: fov_y_deg must be in (0, 180), got {fov_y_deg}")
    if not (0.0 < near < far):
        raise ValueError(f"perspective: need 0 < near < far, got near={near}, far={far}")
    f = 1.0 / np.tan(np.radians(fov_y_deg) / 2.0)
    return np.array(
        [
            [f / aspect, 0.0, 0.0, 0.0],
            [0.0, f, 0.0, 0.0],
            [0.0, 0.0, (far + near) / (near - far), 2.0 * far * near / (near - far)],
            [0.0, 0.0, -1.0, 0.0],
        ],
        dtype=np.float32,
    )


def look_at(eye, target, up=(0, 1, 0)) -> np.ndarray:
    """View matrix (4x4 float32) of a camera at `eye` looking at `target`, `up` pointing up in the image."""
    eye = np.asarray(eye, dtype=np.float64)
    target = np.asarray(target, dtype=np.float64)
    forward = target - eye
    if np.linalg.norm(forward) < 1e-12:
        raise ValueError("look_at: eye and target coincide")
    forward /= np.linalg.norm(forward)
    right = np.cross(forward, np.asarray(up, dtype=np.float64))
    if np.linalg.norm(right) < 1e-12:
        raise ValueError("look_at: `up` is parallel to the viewing direction")
    right /= np.linalg.norm(right)
    true_up = np.cross(right, forward)
    view = np.eye(4)
    view[0, :3], view[1, :3], view[2, :3] = right, true_up, -forward
    view[:3, 3] = -view[:3, :3] @ eye
    return view.astype(np.float32)


def rotation(yaw_deg: float, pitch_deg: float, roll_deg: float) -> np.ndarray:
    """Head-pose rotation (3x3 float32) `Ry(yaw) @ Rx(pitch) @ Rz(roll)`, right-handed about the world axes.

    Applied to head points about the head's pivot. Seen from the game camera: positive yaw turns the nose
    towards the subject's left (image right), positive pitch tips the nose down, positive roll turns the
    face counter-clockwise in the image (the subject's left eye goes up).
    """
    y, p, r = np.radians([yaw_deg, pitch_deg, roll_deg])
    cy, sy, cp, sp, cr, sr = np.cos(y), np.sin(y), np.cos(p), np.sin(p), np.cos(r), np.sin(r)
    ry = np.array([[cy, 0.0, sy], [0.0, 1.0, 0.0], [-sy, 0.0, cy]])
    rx = np.array([[1.0, 0.0, 0.0], [0.0, cp, -sp], [0.0, sp, cp]])
    rz = np.array([[cr, -sr, 0.0], [sr, cr, 0.0], [0.0, 0.0, 1.0]])
    return (ry @ rx @ rz).astype(np.float32)


def project(points: np.ndarray, view_proj: np.ndarray, size: int) -> np.ndarray:
    """Pixel coordinates (N, 2) of world points (N, 3) in a `size` x `size` render: x right, y down, top-left origin."""
    points = np.asarray(points, dtype=np.float64)
    if points.ndim != 2 or points.shape[1] != 3:
        raise ValueError(f"project: points must have shape (N, 3), got {points.shape}")
    view_proj = np.asarray(view_proj, dtype=np.float64)
    clip = points @ view_proj[:, :3].T + view_proj[:, 3]  # (N, 4)
    ndc = clip[:, :2] / clip[:, 3:]
    return np.stack([(ndc[:, 0] + 1.0) * 0.5 * size, (1.0 - ndc[:, 1]) * 0.5 * size], axis=1)


def camera_position(view_proj: np.ndarray) -> np.ndarray:
    """Homogeneous camera centre (4,) of a view-projection matrix: (x, y, z, 1), or (d, 0) towards an ortho camera."""
    view_proj = np.asarray(view_proj, dtype=np.float64)
    rows = view_proj[[0, 1, 3]]  # the centre is where clip x, y and w all vanish
    _, _, vt = np.linalg.svd(rows)
    centre = vt[-1]
    if abs(centre[3]) > 1e-9 * np.abs(centre[:3]).max():
        return centre / centre[3]
    direction = centre[:3] / np.linalg.norm(centre[:3])
    if view_proj[2, :3] @ direction > 0:  # towards the camera NDC depth decreases
        direction = -direction
    return np.append(direction, 0.0)


def shift_image(view_proj: np.ndarray, dx: float, dy: float) -> np.ndarray:
    """`view_proj` with the image translated by (dx, dy) fractions of its size (x right, y down), perspective kept."""
    shift = np.eye(4, dtype=np.float64)
    shift[0, 3], shift[1, 3] = 2.0 * dx, -2.0 * dy  # multiplies clip w: a constant NDC offset
    return (shift @ np.asarray(view_proj, dtype=np.float64)).astype(np.float32)
