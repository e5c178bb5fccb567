"""The synthetic "photo" domain: the same parametric person rendered like a real photograph.

`sample_photo_conditions` draws everything random about one photo (pose, camera distance and offset, light,
clothes, background, and the camera's finishing: skin texture, colour cast, gamma, blur, sensor noise, JPEG);
the Game API poses the head and camera from the first fields and renders it with `conditions.lighting` and
`conditions.clothing`; `finish_photo` turns that render into the photo. Deterministic given the numpy Generator.
Backgrounds are procedural clutter or, in BACKGROUND_PHOTO_SHARE of photos, an out-of-focus crop of a photo
scikit-image ships (no people or animals among them).

Sizes in pixels (`blur_sigma`) are for a 256 px image and scale with the image size.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np

from game.shading import DEFAULT_BACKGROUND, Lighting

# Sampling ranges; every field of PhotoConditions is drawn uniformly inside its range.
YAW_DEG = 30.0  # +-
PITCH_DEG = 15.0  # +-
ROLL_DEG = 10.0  # +-
DISTANCE_SCALE = (0.85, 1.45)  # up to 1.45: the shoulders and clothes come into the picture
OFFSET = 0.05  # +- fraction of the image size, each axis
BLUR_SIGMA = (0.0, 1.2)  # px at 256 px
NOISE_SIGMA = (0.0, 0.03)  # in [0, 1] intensity units
JPEG_QUALITY = (40, 95)  # inclusive
COLOR_CAST = 0.08  # each channel's gain in 1 +- this
GAMMA = (0.8, 1.25)
SKIN_TEXTURE = (0.0, 0.06)  # relative amplitude of the multiplicative skin noise
NEUTRAL_CLOTHES = 0.35  # share of black, white and grey clothes; the rest any hue
BACKGROUND_PHOTO_SHARE = 0.4
# scikit-image's bundled photos (its own licence, no download; files of skimage/data) used as backgrounds: no
# faces in them.
BACKGROUND_PHOTOS = (
    "coffee.png", "rocket.jpg", "motorcycle_left.png", "brick.png", "grass.png", "gravel.png", "coins.png", "text.png"
)  # fmt: skip
REFERENCE_SIZE = 256


@dataclass(frozen=True)
class PhotoConditions:
    """Everything random about one photo of a character."""

    yaw: float  # head pose, degrees (game.camera.rotation)
    pitch: float
    roll: float
    distance_scale: float  # camera distance relative to the game camera's
    offset: tuple  # (dx, dy) image-plane translation of the face, fractions of the size (game.camera.shift_image)
    lighting: Lighting
    background_seed: int
    blur_sigma: float  # Gaussian blur, px at 256 px
    noise_sigma: float  # sensor noise, about this standard deviation in [0, 1] units
    jpeg_quality: int
    color_cast: tuple  # per-channel RGB gains
    gamma: float  # out = in ** gamma
    skin_texture: float  # multiplicative skin noise amplitude
    clothing: tuple = (0.23, 0.26, 0.32)  # RGB in [0, 1] of the top the person wears


def sample_photo_conditions(rng: np.random.Generator) -> PhotoConditions:
    """Draw one photo's conditions from `rng` (ranges: the module constants)."""
    yaw, pitch, roll = rng.uniform(-1.0, 1.0, 3) * (YAW_DEG, PITCH_DEG, ROLL_DEG)
    distance_scale = rng.uniform(*DISTANCE_SCALE)
    offset = tuple(float(x) for x in rng.uniform(-OFFSET, OFFSET, 2))
    lighting = _sample_lighting(rng)
    background_seed = int(rng.integers(0, 2**31 - 1))
    blur_sigma = rng.uniform(*BLUR_SIGMA)
    noise_sigma = rng.uniform(*NOISE_SIGMA)
    jpeg_quality = int(rng.integers(JPEG_QUALITY[0], JPEG_QUALITY[1] + 1))
    color_cast = tuple(float(x) for x in 1.0 + rng.uniform(-COLOR_CAST, COLOR_CAST, 3))
    gamma = rng.uniform(*GAMMA)
    skin_texture = rng.uniform(*SKIN_TEXTURE)
    clothing = _sample_clothing(rng)
    return PhotoConditions(
        yaw=float(yaw), pitch=float(pitch), roll=float(roll), distance_scale=float(distance_scale), offset=offset,
        lighting=lighting, background_seed=background_seed, blur_sigma=float(blur_sigma),
        noise_sigma=float(noise_sigma), jpeg_quality=jpeg_quality, color_cast=color_cast, gamma=float(gamma),
        skin_texture=float(skin_texture), clothing=clothing,
    )  # fmt: skip


def _sample_clothing(rng: np.random.Generator) -> tuple:
    """A top's colour: black, white or grey in NEUTRAL_CLOTHES of photos, else any hue, muted to vivid."""
    neutral = rng.uniform() < NEUTRAL_CLOTHES
    hue, saturation = rng.uniform(0.0, 360.0), rng.uniform(0.0, 0.08) if neutral else rng.uniform(0.15, 0.8)
    value = rng.uniform(0.08, 0.9)
    hsv = np.array([[[hue, saturation, value]]], np.float32)
    return tuple(float(c) for c in cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)[0, 0])


def _direction(azimuth_deg: float, elevation_deg: float) -> tuple:
    """Unit vector towards a light at `azimuth` (0 = in front, + towards world +x) and `elevation` (+ up)."""
    az, el = np.radians(azimuth_deg), np.radians(elevation_deg)
    return (float(np.sin(az) * np.cos(el)), float(np.sin(el)), float(np.cos(az) * np.cos(el)))


def _tint(warmth: float) -> np.ndarray:
    """A light's colour for a colour temperature stand-in: warmth -1 (bluish) .. 0 (white) .. +1 (tungsten)."""
    rgb = np.array([1.0 + 0.20 * warmth, 1.0 + 0.02 * warmth, 1.0 - 0.30 * warmth])
    return rgb / rgb.max()


LIGHT_KINDS = (0.6, 0.25, 0.15)  # shares of an ordinary portrait light, a hard window light, an overcast one


def _sample_lighting(rng: np.random.Generator) -> Lighting:
    """Random portrait light: a key anywhere in front (azimuth +-75 deg, elevation -15..60), a weaker fill opposite;
    in LIGHT_KINDS of photos instead a hard side light from a window (little fill, dim room) or a soft overcast one
    (a weak key, strong ambient)."""
    kind = rng.choice(3, p=LIGHT_KINDS)
    key_az, key_el = rng.uniform(-75.0, 75.0), rng.uniform(-15.0, 60.0)
    key = _tint(rng.uniform(-1.0, 1.0)) * rng.uniform(0.5, 1.0)
    side = -1.0 if key_az > 0 else 1.0
    fill_az, fill_el = side * rng.uniform(20.0, 80.0), rng.uniform(-20.0, 30.0)
    fill = _tint(rng.uniform(-1.0, 1.0)) * rng.uniform(0.05, 0.40)
    ambient = _tint(rng.uniform(-0.6, 0.6)) * rng.uniform(0.15, 0.40)
    if kind == 1:  # window: from the side, bright, little fill
        key_az, key_el = np.sign(key_az) * rng.uniform(55.0, 80.0), rng.uniform(0.0, 30.0)
        key, fill, ambient = key / key.max(), fill * 0.3, ambient * 0.6
    elif kind == 2:  # overcast: weak key from above, the room full of light
        key_el, key, ambient = rng.uniform(30.0, 60.0), key * 0.5, np.minimum(ambient * 2.0, 0.8)
    return Lighting(
        key_direction=_direction(key_az, key_el),
        key_color=tuple(float(c) for c in key),
        fill_direction=_direction(fill_az, fill_el),
        fill_color=tuple(float(c) for c in fill),
        ambient=tuple(float(c) for c in ambient),
        specular=float(rng.uniform(0.05, 0.45)),
        shininess=float(rng.uniform(8.0, 40.0)),
    )


def _palette(rng: np.random.Generator, count: int) -> np.ndarray:
    """`count` uint8 RGB colours of one scene: around a dominant hue (a fifth complementary), muted to vivid."""
    hue = rng.uniform(0.0, 360.0) + rng.normal(0.0, 30.0, count) + 180.0 * (rng.uniform(size=count) < 0.2)
    saturation = np.clip(rng.uniform(0.05, 0.6) * rng.uniform(0.0, 1.5, count), 0.0, 1.0)
    value = rng.uniform(0.15, 0.95, count)
    hsv = np.stack([hue % 360.0, saturation, value], -1).astype(np.float32)[None]  # (1, count, 3)
    return (cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)[0] * 255.0 + 0.5).astype(np.uint8)


_BYTE_NOISE_STD = float(np.sqrt(2.0 * (256.0**2 - 1.0) / 12.0))  # of the sum of two uniform bytes


def _byte_noise(rng: np.random.Generator, shape) -> np.ndarray:
    """Zero-mean triangular int16 noise of standard deviation _BYTE_NOISE_STD, from two random bytes a value (fast)."""
    count = int(np.prod(shape))
    pairs = np.frombuffer(rng.bytes(2 * count), np.uint8).reshape(2, count)
    return cv2.add(pairs[0], pairs[1], dtype=cv2.CV_16S).reshape(shape) - np.int16(255)


def _unit_noise(rng: np.random.Generator, shape) -> np.ndarray:
    """Zero-mean, unit-variance float32 noise (triangular, see _byte_noise)."""
    return _byte_noise(rng, shape).astype(np.float32) * np.float32(1.0 / _BYTE_NOISE_STD)


@lru_cache(maxsize=1)
def _background_photos() -> tuple:
    """(uint8 RGB photo, whether it was grey) for scikit-image's bundled background photos, read once per process
    straight from its data folder with OpenCV (skimage.data's loaders take half a second to start)."""
    from importlib.util import find_spec
    from pathlib import Path

    folder = Path(find_spec("skimage").origin).parent / "data"
    photos = []
    for name in BACKGROUND_PHOTOS:
        image = cv2.imread(str(folder / name), cv2.IMREAD_UNCHANGED)
        if image is None:
            raise FileNotFoundError(f"{folder / name}: a background photo scikit-image ships is missing")
        grey = image.ndim == 2
        image = np.stack([image] * 3, -1) if grey else cv2.cvtColor(image[..., :3], cv2.COLOR_BGR2RGB)
        photos.append((np.ascontiguousarray(image.astype(np.uint8)), grey))
    return tuple(photos)


def photo_background(size: int, rng: np.random.Generator) -> np.ndarray:
    """An out-of-focus crop (S, S, 3) uint8 of one of scikit-image's photos: random place, scale, flip, tint."""
    photos = _background_photos()
    image, grey = photos[int(rng.integers(len(photos)))]
    height, width = image.shape[:2]
    side = int(min(height, width) * rng.uniform(0.35, 1.0))
    top, left = int(rng.integers(0, height - side + 1)), int(rng.integers(0, width - side + 1))
    crop = cv2.resize(image[top : top + side, left : left + side], (size, size), interpolation=cv2.INTER_AREA)
    if rng.uniform() < 0.5:
        crop = crop[:, ::-1]
    tint = _palette(rng, 1)[0] / 160.0 if grey else 1.0 + rng.uniform(-0.25, 0.25, 3)  # colour the grey ones
    gain = np.asarray(tint) * rng.uniform(0.6, 1.15)
    crop = cv2.multiply(np.ascontiguousarray(crop), tuple(float(g) for g in gain) + (0.0,), dtype=cv2.CV_8U)
    return cv2.GaussianBlur(crop, (0, 0), rng.uniform(0.5, 3.5) * size / 256.0)


def random_background(size: int, rng: np.random.Generator) -> np.ndarray:
    """A cluttered, out-of-focus indoor/outdoor-ish backdrop (S, S, 3) uint8: procedural or a photo crop."""
    if rng.uniform() < BACKGROUND_PHOTO_SHARE:
        return photo_background(size, rng)
    return procedural_background(size, rng)


def procedural_background(size: int, rng: np.random.Generator) -> np.ndarray:
    """Gradient, shapes, stripes and bokeh, drawn at half size and blurred (S, S, 3) uint8."""
    work = max(16, size // 2)  # drawn at half size, then blurred and scaled up: backgrounds are out of focus
    colours = _palette(rng, 16)

    # base: a two-colour gradient in a random direction with uneven light (a smooth 4x4 field, scaled up)
    angle = rng.uniform(0.0, 2.0 * np.pi)
    grid = np.linspace(-0.5, 0.5, 4)
    t = np.cos(angle) * grid[None, :] + np.sin(angle) * grid[:, None] + 0.5 + rng.normal(0.0, 0.15, (4, 4))
    c0, c1 = colours[0].astype(np.float64), colours[1].astype(np.float64)
    field = np.clip(c0 + t[..., None] * (c1 - c0), 0, 255).astype(np.uint8)  # (4, 4, 3)
    canvas = cv2.resize(field, (work, work), interpolation=cv2.INTER_CUBIC)

    # clutter: rectangles (walls, windows, furniture), ellipses, polygons, patches of stripes (blinds, shelves)
    for i in range(int(rng.integers(3, 12))):
        colour = tuple(int(c) for c in colours[2 + i % 14])
        kind = rng.choice(4, p=(0.35, 0.25, 0.2, 0.2))
        x0, y0 = (int(v) for v in rng.integers(-work // 4, work, 2))
        w, h = (int(v) for v in rng.integers(work // 8, work, 2))
        if kind == 0:
            cv2.rectangle(canvas, (x0, y0), (x0 + w, y0 + h), colour, -1)
        elif kind == 1:
            cv2.ellipse(canvas, (x0, y0), (w // 2, h // 2), float(rng.uniform(0, 180)), 0, 360, colour, -1, cv2.LINE_AA)
        elif kind == 2:
            points = rng.integers(-work // 4, work + work // 4, (int(rng.integers(3, 6)), 2)).astype(np.int32)
            cv2.fillPoly(canvas, [points], colour, cv2.LINE_AA)
        else:
            x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x0 + w, work), min(y0 + h, work)
            if x1 - x0 < 2 or y1 - y0 < 2:
                continue
            patch = np.ascontiguousarray(canvas[y0:y1, x0:x1])
            vertical, period = rng.uniform() < 0.5, int(rng.integers(3, max(4, work // 8)))
            thickness = max(1, int(period * rng.uniform(0.2, 0.6)))
            for k in range(0, max(x1 - x0, y1 - y0), period):
                a, b = ((k, 0), (k, y1 - y0)) if vertical else ((0, k), (x1 - x0, k))
                cv2.line(patch, a, b, colour, thickness, cv2.LINE_AA)
            canvas[y0:y1, x0:x1] = patch

    sigma = rng.uniform(0.3, 3.0) * work / 128.0  # depth of field
    canvas = cv2.GaussianBlur(canvas, (0, 0), sigma)

    # bokeh: soft bright discs from out-of-focus lights, added
    n_bokeh = int(rng.integers(0, 9))
    if n_bokeh:
        glow = np.zeros_like(canvas)
        for _ in range(n_bokeh):
            centre = tuple(int(v) for v in rng.integers(0, work, 2))
            radius = int(rng.integers(max(1, work // 40), max(2, work // 8)))
            tint = rng.uniform(0.6, 1.0, 3) * 255.0 * rng.uniform(0.2, 0.7)
            cv2.circle(glow, centre, radius, tuple(int(c) for c in tint), -1, cv2.LINE_AA)
        glow = cv2.GaussianBlur(glow, (0, 0), max(0.5, work / 160.0))
        canvas = cv2.add(canvas, glow)

    return cv2.resize(canvas, (size, size), interpolation=cv2.INTER_LINEAR)


def finish_photo(
    rgba: np.ndarray,
    conditions: PhotoConditions,
    rng: np.random.Generator,
    render_background=DEFAULT_BACKGROUND,
) -> np.ndarray:
    """Turn a render (S, S, 4) uint8 into a photo (S, S, 3) uint8: background, skin, cast, gamma, blur, noise, JPEG.

    `render_background` is the `background` the render was made with (its RGB is composited over it): it is
    taken out again before the photo background goes in, so silhouettes carry no halo.
    """
    if rgba.ndim != 3 or rgba.shape[2] != 4 or rgba.shape[0] != rgba.shape[1] or rgba.dtype != np.uint8:
        raise ValueError(f"finish_photo: expected a square uint8 RGBA render (S, S, 4), got {rgba.dtype} {rgba.shape}")
    rgba = np.ascontiguousarray(rgba)
    size = rgba.shape[0]
    scale = size / REFERENCE_SIZE

    background = random_background(size, np.random.default_rng(conditions.background_seed))
    # 8-bit arithmetic in OpenCV throughout: float temporaries of this size cost more in page faults than in maths
    uncovered = cv2.merge([cv2.bitwise_not(cv2.extractChannel(rgba, 3))] * 3)  # 255 * (1 - alpha), per channel
    face = cv2.cvtColor(rgba, cv2.COLOR_RGBA2RGB)  # composited over render_background
    render_bg = tuple(255.0 * float(c) for c in render_background)
    if any(render_bg):
        face = cv2.subtract(face, cv2.multiply(uncovered, render_bg + (0.0,), scale=1.0 / 255.0))  # premultiplied

    if conditions.skin_texture > 0:
        # pores (about a pixel at 256 px) plus blotches (about a tenth of the image), multiplicative, 128 = 1
        texture = cv2.GaussianBlur(_unit_noise(rng, (size, size)), (0, 0), 0.6 * scale + 0.2)
        coarse = cv2.resize(_unit_noise(rng, (12, 12)), (size, size), interpolation=cv2.INTER_LINEAR)
        amplitude = 128.0 * conditions.skin_texture
        texture = cv2.addWeighted(texture, 1.6 * amplitude, coarse, 0.6 * amplitude, 128.0, dtype=cv2.CV_8U)
        face = cv2.multiply(face, cv2.merge([texture] * 3), scale=1.0 / 128.0)

    image = cv2.add(face, cv2.multiply(background, uncovered, scale=1.0 / 255.0))
    # colour cast and gamma in one per-channel look-up table
    levels = np.arange(256, dtype=np.float64)[:, None] / 255.0 * np.asarray(conditions.color_cast)[None, :]
    lut = (np.clip(levels, 0.0, 1.0) ** conditions.gamma * 255.0 + 0.5).astype(np.uint8)  # (256, 3)
    image = cv2.LUT(image, lut[None])

    sigma = conditions.blur_sigma * scale
    if sigma > 0.05:
        image = cv2.GaussianBlur(image, (0, 0), sigma)

    if conditions.noise_sigma > 0:
        # luminance noise per pixel, chroma noise coarser (demosaicing spreads it), as in a camera
        half = max(1, size // 2)
        chroma = cv2.resize(_byte_noise(rng, (half, half, 3)), (size, size), interpolation=cv2.INTER_LINEAR)
        luma = cv2.merge([_byte_noise(rng, (size, size))] * 3)
        gain = conditions.noise_sigma * 255.0 / _BYTE_NOISE_STD
        noise = cv2.addWeighted(luma, 0.8 * gain, chroma, 0.6 * gain, 0.0, dtype=cv2.CV_16S)
        image = cv2.add(image, noise, dtype=cv2.CV_8U)  # saturates

    quality = [cv2.IMWRITE_JPEG_QUALITY, int(conditions.jpeg_quality)]
    ok, encoded = cv2.imencode(".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR), quality)
    if not ok:
        raise RuntimeError("finish_photo: OpenCV could not JPEG-encode the image")
    return cv2.cvtColor(cv2.imdecode(encoded, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
