"""The game's neutral face: MediaPipe's 468 landmarks made symmetric, and the face regions sliders act on.

The neutral face is game data, `game/data/neutral_face.npy` (468 x 3 float64, world units): the landmark
network on a photo that scikit-image ships, symmetrised by `landmarks_to_world` and remade by
`python -m models build-assets` (game/data/NOTICE.md). Units follow docs/contracts.md: inter-ocular
distance 1, origin between the eyes, x to the subject's left, y up, z towards the camera.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from game import topology

NEUTRAL_FACE_FILE = Path(__file__).parent / "data" / "neutral_face.npy"

# Regions the parameter groups act on (docs/contracts.md section 3); every face vertex has one.
REGIONS = ("forehead", "brows", "eyes", "nose", "cheeks", "mouth", "jaw", "head", "ears", "neck")

# Seed landmarks per face region (subject's left side; right side by mirror); every face vertex
# takes the region of its nearest seed, which follows the face's anatomy without hand-drawn masks.
# fmt: off
REGION_SEEDS = {
    "forehead": [10, 151, 9, 108, 337, 69, 299, 104, 333, 67, 297, 109, 338, 103, 332, 54, 284],
    "brows": [276, 283, 282, 295, 285, 300, 293, 334, 296, 336],
    "eyes": [
        263, 249, 390, 373, 374, 380, 381, 382, 362, 398, 384, 385, 386, 387, 388, 466, 257, 258, 259, 260, 467,
        253, 254, 339, 255, 359
    ],
    "nose": [
        168, 6, 197, 195, 5, 4, 1, 19, 94, 2, 98, 327, 326, 97, 294, 64, 278, 48, 279, 49, 420, 198, 437, 217,
        399, 174, 456, 236, 363, 134, 360, 131, 344, 115, 440, 220
    ],
    "mouth": [
        0, 267, 269, 270, 409, 291, 375, 321, 405, 314, 17, 84, 181, 91, 146, 61, 185, 40, 39, 37, 13, 14, 312,
        311, 310, 415, 308, 317, 402, 318, 324, 164, 167, 393, 391, 165
    ],
    "cheeks": [
        280, 352, 345, 346, 347, 348, 425, 411, 376, 433, 416, 427, 266, 330, 329, 350, 349, 451, 450, 449, 448,
        261, 446, 265, 372, 383, 353, 342, 445, 444, 443, 442, 436, 426, 423, 371, 355, 429, 358
    ],
    "jaw": [
        152, 148, 377, 176, 400, 149, 378, 150, 379, 136, 365, 172, 397, 58, 288, 132, 361, 175, 199, 200, 18,
        428, 208, 171, 396, 140, 369, 32, 262, 201, 421, 313, 406, 418, 424, 422, 430, 431, 395, 394, 364, 367,
        435, 401, 323, 93
    ],
}
# fmt: on


def neutral_face_landmarks() -> np.ndarray:
    """(468, 3) symmetrised neutral landmarks in world units (game data, see NEUTRAL_FACE_FILE)."""
    return np.load(NEUTRAL_FACE_FILE)


def landmarks_to_world(image_landmarks: np.ndarray, close_mouth: bool = True) -> np.ndarray:
    """Turn landmark-net output (x right, y down, z away from camera; pixels) into the symmetric neutral face."""
    points = image_landmarks * np.array([1.0, -1.0, -1.0])
    twin = topology.mirror_map(points)
    # Rotate so the symmetry plane is x = 0, then average each point with its mirrored twin.
    centred = points - points.mean(0)
    left_minus_right = centred - centred[twin]
    axis = np.linalg.svd(left_minus_right, full_matrices=False)[2][0]
    if axis @ (centred[263] - centred[33]) < 0:
        axis = -axis
    oval = centred[topology.loop("FACE_OVAL")]
    normal = np.linalg.svd(oval - oval.mean(0), full_matrices=False)[2][2]
    normal -= (normal @ axis) * axis
    normal /= np.linalg.norm(normal)
    if normal[2] < 0:
        normal = -normal
    up = np.cross(normal, axis)
    frame = np.stack([axis, up, normal])  # rows: new x, y, z
    aligned = centred @ frame.T
    mirrored = aligned[twin] * np.array([-1.0, 1.0, 1.0])
    symmetric = (aligned + mirrored) / 2
    left_eye = symmetric[topology.loop("LEFT_EYE")].mean(0)
    right_eye = symmetric[topology.loop("RIGHT_EYE")].mean(0)
    symmetric = (symmetric - (left_eye + right_eye) / 2) / np.linalg.norm(left_eye - right_eye)
    symmetric[np.abs(symmetric[:, 0]) < 1e-9, 0] = 0.0
    return _close_mouth(symmetric) if close_mouth else symmetric


def _close_mouth(points: np.ndarray) -> np.ndarray:
    """Close an open mouth (the source photo smiles): move the lips together, dragging their surroundings smoothly."""
    upper = [191, 80, 81, 82, 13, 312, 311, 310, 415]
    lower = [95, 88, 178, 87, 14, 317, 402, 318, 324]
    gap = points[upper, 1] - points[lower, 1]  # negative when open
    targets = np.concatenate([upper, lower])
    shift = np.concatenate([-gap / 2, gap / 2])  # upper lip down, lower lip up (gap < 0)
    # Gaussian radial-basis spread of the lip shifts; lips keep the exact shift, the chin a fraction.
    distances = np.linalg.norm(points[:, None, :2] - points[None, targets, :2], axis=-1)
    weights = np.exp(-((distances / 0.18) ** 2))
    weights /= weights.sum(1, keepdims=True) + 1e-9
    falloff = np.exp(-((distances.min(1) / 0.35) ** 2))
    out = points.copy()
    out[:, 1] += falloff * (weights @ shift)
    out[targets, 1] = points[targets, 1] + shift
    # A smile raises and widens the corners: bring them to the lip line and a neutral width.
    corners = np.array([61, 291])
    line = (out[13, 1] + out[14, 1]) / 2
    corner_shift = np.stack([-np.sign(out[corners, 0]) * 0.06, line - out[corners, 1] - 0.02, [0.0, 0.0]], 1)
    corner_distance = np.linalg.norm(out[:, None, :2] - out[None, corners, :2], axis=-1)
    corner_weights = np.exp(-((corner_distance / 0.3) ** 2))
    out += corner_weights @ corner_shift
    return out
