"""The detail texture (engine v2): fine pattern the renderer adds per pixel, so skin, stubble and hair are not flat.

One tileable 256 x 256 RGBA image, made once from a fixed seed (numpy and OpenCV, the same everywhere), and
copies of it halved or doubled for other picture sizes (`level_for`): R: fine grain (pores and mottling, ~1
texel), G: blotches (~8 texels), B: stipple (sparse dots: stubble), A: streaks (fine across u, long along v:
hair strands, iris fibres). R, G and A are 0.5 on average and B is 0 between its dots; the shader subtracts
those, so a material weight of 0 leaves the v1 shading untouched. Vertices carry texture coordinates (game.head) and a
material (game.appearance) saying how much of each channel applies; the shader (game.render) reads them:
    albedo *= 1 + grain * (0.10 (R - 0.5) + 0.07 (G - 0.5)) + streak * 0.9 (A - 0.5)
    albedo *= 1 - stipple * 0.7 * clamp((B - 0.35) / 0.4, 0, 1)
and `skin` softens the light (wrapped diffuse, redder where it turns away, a broader and weaker highlight).
Written here: no library ships a seeded, tileable multi-channel noise texture with these statistics.
"""

from __future__ import annotations

from functools import lru_cache

import cv2
import numpy as np

SIZE = 256


def _periodic_noise(rng: np.random.Generator, sigma_u: float, sigma_v: float) -> np.ndarray:
    """Tileable Gaussian-filtered white noise (SIZE, SIZE), axes (v, u), scaled to unit standard deviation."""
    white = rng.standard_normal((SIZE, SIZE))
    fu = np.fft.fftfreq(SIZE)[None, :]
    fv = np.fft.fftfreq(SIZE)[:, None]
    response = np.exp(-2 * np.pi**2 * ((fu * sigma_u) ** 2 + (fv * sigma_v) ** 2))
    noise = np.real(np.fft.ifft2(np.fft.fft2(white) * response))
    return noise / noise.std()


def level_for(size: int, supersample: int) -> int:
    """The copy of the texture to draw a `size` px picture with, so one texel covers about one rendered pixel
    (the renderer samples the nearest texel, without mipmaps, for speed): skin coordinates carry 64 texels per
    iod unit at level 0 and a picture spans 4 units; each level halves the texture, each negative one doubles it.
    256 px with x2 supersampling: level -1."""
    pixels_per_unit = size * supersample / 4
    return int(np.clip(np.ceil(np.log2(64 / pixels_per_unit) - 1e-9), -2, 4))


@lru_cache(maxsize=8)
def detail_texture(level: int = 0) -> np.ndarray:
    """(SIZE / 2^level, same, 4) uint8 RGBA, rows = v, columns = u; made once per process from seed 2024, then
    area-averaged `level` times, or bilinearly doubled -`level` times (it stays tileable)."""
    if level > 0:
        finer = detail_texture(level - 1)
        return cv2.resize(finer, (finer.shape[1] // 2, finer.shape[0] // 2), interpolation=cv2.INTER_AREA)
    if level < 0:
        coarser = detail_texture(level + 1)
        tiled = np.tile(coarser, (3, 3, 1))  # doubled with its neighbours, so the edges stay tileable
        n = coarser.shape[0]
        return cv2.resize(tiled, (6 * n, 6 * n), interpolation=cv2.INTER_LINEAR)[2 * n : 4 * n, 2 * n : 4 * n].copy()
    rng = np.random.default_rng(2024)
    grain = _periodic_noise(rng, 0.8, 0.8)
    blotch = _periodic_noise(rng, 7.0, 7.0)
    dots = (rng.random((SIZE, SIZE)) < 0.18).astype(float)
    stipple = np.real(np.fft.ifft2(np.fft.fft2(dots) * np.fft.fft2(_kernel(0.7))))
    stipple = stipple / stipple.max()
    streak = _periodic_noise(rng, 0.7, 22.0)
    channels = [
        0.5 + 0.18 * grain,
        0.5 + 0.18 * blotch,
        stipple,
        0.5 + 0.25 * streak,
    ]
    return np.clip(np.stack(channels, -1) * 255 + 0.5, 0, 255).astype(np.uint8)


def _kernel(sigma: float) -> np.ndarray:
    """A periodic Gaussian kernel (SIZE, SIZE) centred on the origin, summing to 1."""
    d = np.minimum(np.arange(SIZE), SIZE - np.arange(SIZE))
    g = np.exp(-(d**2) / (2 * sigma**2))
    kernel = g[:, None] * g[None, :]
    return kernel / kernel.sum()
