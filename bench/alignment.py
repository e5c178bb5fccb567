"""Anti-aliasing of the photo-to-template warp (game.framing.warp_photo) against the warps it replaced.

`python -m bench.alignment` warps a 2048 px photo (scikit-image's astronaut upscaled 4x, and a zone plate kept
under half the photo's Nyquist), turned 10 degrees, to 64 and 256 px with each method and prints, per case,
the PSNR against a box-footprint reference (each output pixel the mean of the photo over its footprint, sampled
at <= 0.5 photo px in float: what a camera with output-sized cells sees), the zone plate's energy past 1.5x the
output's Nyquist (ideally 0; dB re full contrast) and the time per warp on one thread.
"""

from __future__ import annotations

import time

import cv2
import numpy as np
from skimage import data

from game.framing import warp_photo

SOURCE = 2048
ZONE_K = np.pi / (2 * np.hypot(SOURCE / 2, SOURCE / 2)) * 0.5  # zone plate phase k r^2: half the Nyquist at corners


def _opencv(matrix: np.ndarray) -> np.ndarray:
    matrix = np.asarray(matrix, np.float64).copy()
    matrix[:, 2] += matrix[:, :2].sum(1) * 0.5 - 0.5  # pixel centres at +0.5 -> OpenCV's integers
    return matrix


def _shrink(matrix: np.ndarray) -> float:
    return 1.0 / np.sqrt(abs(np.linalg.det(matrix[:, :2])))


def bilinear(photo, matrix, size):
    """No anti-aliasing."""
    return cv2.warpAffine(photo, _opencv(matrix), (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def _area_then_bilinear(photo, matrix, factor):
    height, width = photo.shape[:2]
    small = (max(1, round(width / factor)), max(1, round(height / factor)))
    matrix = np.asarray(matrix, np.float64).copy()
    matrix[:, :2] *= np.array([[width / small[0], height / small[1]]])
    return cv2.resize(photo, small, interpolation=cv2.INTER_AREA), matrix


def old_training(photo, matrix, size):
    """datamodules.photos.align_to_template before: area-resize the photo to the warp's scale, then bilinear."""
    if _shrink(matrix) > 1:
        photo, matrix = _area_then_bilinear(photo, matrix, _shrink(matrix))
    return bilinear(photo, matrix, size)


def old_benchmark(photo, matrix, size):
    """eval.align.warp before: area-resize by an integer factor, leaving 2-4x of bilinear shrinking."""
    factor = int(0.5 * _shrink(matrix))
    if factor > 1:
        photo, matrix = _area_then_bilinear(photo, matrix, factor)
    return bilinear(photo, matrix, size)


def gaussian(photo, matrix, size):
    """Gaussian blur sigma 0.5 (d - 1) photo px, then bilinear (kornia's gaussian_blur2d + warp_affine match it)."""
    if _shrink(matrix) > 1:
        sigma = 0.5 * (_shrink(matrix) - 1)
        photo = cv2.GaussianBlur(photo, (0, 0), sigma, borderType=cv2.BORDER_REPLICATE)
    return bilinear(photo, matrix, size)


METHODS = {
    "warp_photo (box footprint)": warp_photo,
    "bilinear only": bilinear,
    "old training warp": old_training,
    "old benchmark warp": old_benchmark,
    "Gaussian 0.5 (d - 1)": gaussian,
}


def reference(photo: np.ndarray, matrix: np.ndarray, size: int) -> np.ndarray:
    """Float box-footprint average with sample spacing <= 0.5 photo px (at most 4096 px wide in between)."""
    k = int(min(4 * np.ceil(_shrink(matrix)), 4096 // size))
    fine = cv2.warpAffine(
        photo.astype(np.float32), _opencv(np.asarray(matrix) * k), (size * k,) * 2, flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_REPLICATE,
    )  # fmt: skip
    return cv2.resize(fine, (size, size), interpolation=cv2.INTER_AREA)


def similarity(scale: float, degrees: float, centre: np.ndarray, size: int) -> np.ndarray:
    """2x3 photo -> crop similarity putting `centre` mid-crop, turned by `degrees`."""
    a = np.deg2rad(degrees)
    rotation = scale * np.array([[np.cos(a), np.sin(a)], [-np.sin(a), np.cos(a)]])
    return np.hstack([rotation, (size / 2 - rotation @ centre)[:, None]])


def zone_plate() -> np.ndarray:
    y, x = np.mgrid[0:SOURCE, 0:SOURCE] + 0.5 - SOURCE / 2
    return (255 * (0.5 + 0.5 * np.cos(ZONE_K * (x**2 + y**2))) + 0.5).astype(np.uint8)


def alias_db(image: np.ndarray, matrix: np.ndarray, size: int) -> float:
    """Zone plate: mean energy where its local frequency passes 1.5x the output's Nyquist, dB re full contrast."""
    inverse = cv2.invertAffineTransform(np.asarray(matrix, np.float64))
    ys, xs = np.mgrid[0:size, 0:size] + 0.5
    u = inverse[0, 0] * xs + inverse[0, 1] * ys + inverse[0, 2] - SOURCE / 2
    v = inverse[1, 0] * xs + inverse[1, 1] * ys + inverse[1, 2] - SOURCE / 2
    radius = np.hypot(u, v)
    region = (2 * ZONE_K * radius * _shrink(matrix) > 1.5 * np.pi) & (radius < SOURCE / 2 - 10)
    return float(10 * np.log10(np.mean((image.astype(np.float64)[region] - 127.5) ** 2) / (0.5 * 127.5**2)))


def main() -> None:
    cv2.setNumThreads(1)
    astronaut = cv2.resize(data.astronaut(), (SOURCE, SOURCE), interpolation=cv2.INTER_CUBIC)
    cases = {"astronaut x4": (astronaut, (900.0, 520.0), 480.0), "zone plate": (zone_plate(), (1024.0, 1024.0), 1400.0)}
    print("| photo | px | shrink | method | PSNR dB | alias dB | ms |\n|---|---|---|---|---|---|---|")
    for name, (photo, centre, span) in cases.items():
        for size in (64, 256):
            matrix = similarity(size / span, 10.0, np.array(centre), size)
            target = reference(photo, matrix, size)
            for method, warp in METHODS.items():
                start = time.perf_counter()
                image = warp(photo, matrix, size)
                ms = (time.perf_counter() - start) * 1e3
                psnr = 10 * np.log10(255**2 / np.mean((image.astype(np.float64) - target) ** 2))
                alias = f"{alias_db(image, matrix, size):.1f}" if name == "zone plate" else ""
                print(f"| {name} | {size} | {span / size:.1f} | {method} | {psnr:.1f} | {alias} | {ms:.1f} |")
            if name == "zone plate":
                alias = alias_db(target, matrix, size)
                print(f"| {name} | {size} | {span / size:.1f} | (reference) | inf | {alias:.1f} | |")


if __name__ == "__main__":
    main()
