"""Harder synthetic photos for benchmarks: passing expressions, glasses and occluders.

None of them changes who the person is: the ground-truth parameters stay the identity's, the
expression only bends the face for this photo, and glasses/occluders are painted over the render
before the photo finishing (so blur, noise and JPEG apply to them too).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import cv2
import numpy as np

from game import parameters as P

# Sliders an expression moves (smile, raised brows, squint, open mouth) and how far at most.
EXPRESSION_RANGE = {
    "mouth_corner_height": 1.6,
    "mouth_corner_spacing": 0.8,
    "lip_line_height": 1.0,
    "lower_lip_height": 1.2,
    "brow_height": 1.2,
    "brow_inner_height": 1.0,
    "upper_lid_height": 1.0,
    "lower_lid_height": 0.8,
    "cheek_height": 0.8,
    "mouth_width": 0.8,
}


@dataclass(frozen=True)
class PhotoExtras:
    """Probabilities that a photo shows an expression, glasses, or an occluder over part of the face."""

    expressions: float = 0.0
    glasses: float = 0.0
    occluders: float = 0.0

    def __post_init__(self):
        for name, value in asdict(self).items():
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"PhotoExtras.{name} is a probability, got {value}")

    @property
    def active(self) -> bool:
        return any(asdict(self).values())

    def expression(self, params: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """The parameters this photo is rendered with: the identity's, bent by a random expression."""
        if rng.random() >= self.expressions:
            return params
        bent = params.copy()
        for name, reach in EXPRESSION_RANGE.items():
            bent[P.index_of(name)] += rng.uniform(-reach, reach)
        return np.clip(bent, P.LOW, P.HIGH)

    def paint(self, rgba: np.ndarray, points: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Glasses and/or an occluder painted on the render at the face's five points (pixels)."""
        image = rgba.copy()
        eyes = points[:2]
        iod = float(np.linalg.norm(eyes[1] - eyes[0]))
        if rng.random() < self.glasses:
            colour = tuple(int(c) for c in rng.integers(0, 90, 3)) + (255,)
            thickness = max(1, int(round(iod / 22)))
            axes = (int(iod * rng.uniform(0.36, 0.46)), int(iod * rng.uniform(0.26, 0.36)))
            for eye in eyes:
                if rng.random() < 0.3:  # tinted lenses
                    overlay = image.copy()
                    cv2.ellipse(overlay, _pt(eye), axes, 0, 0, 360, colour, -1, cv2.LINE_AA)
                    image = cv2.addWeighted(overlay, 0.35, image, 0.65, 0)
                cv2.ellipse(image, _pt(eye), axes, 0, 0, 360, colour, thickness, cv2.LINE_AA)
            inner = eyes.mean(0)
            cv2.line(
                image,
                _pt(inner - [axes[0] * 0.35, 0]),
                _pt(inner + [axes[0] * 0.35, 0]),
                colour,
                thickness,
                cv2.LINE_AA,
            )
            for eye, side in zip(eyes, (-1, 1)):
                cv2.line(
                    image,
                    _pt(eye + [side * axes[0], 0]),
                    _pt(eye + [side * iod * 1.1, -iod * 0.05]),
                    colour,
                    thickness,
                    cv2.LINE_AA,
                )
        if rng.random() < self.occluders:
            # A hand-, scarf- or microphone-like blob over a random part of the lower or side face.
            centre = points.mean(0) + rng.uniform(-0.6, 0.6, 2) * iod + [0, 0.4 * iod]
            axes = (int(iod * rng.uniform(0.3, 0.7)), int(iod * rng.uniform(0.2, 0.5)))
            colour = tuple(int(c) for c in rng.integers(30, 230, 3)) + (255,)
            cv2.ellipse(image, _pt(centre), axes, float(rng.uniform(0, 180)), 0, 360, colour, -1, cv2.LINE_AA)
        return image


def _pt(xy) -> tuple[int, int]:
    return int(round(float(xy[0]) - 0.5)), int(round(float(xy[1]) - 0.5))
