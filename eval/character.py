"""Aligned faces -> a character: the model that reads them, the palette and colour rules, several photos combined.

One photo gives the parameters the model reads from its aligned face, clipped to the range; a grayscale photo keeps
the colour sliders neutral, and with skin snap on the skin tone is the palette entry nearest the photo's own skin.
Several photos of one person give the per-slider median (colour sliders over the colour photos only) and the spread
across photos, which the app shows as the model's confidence per slider.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from eval.align import AlignedFace
from eval.fast_inference import fast_predictor
from game import parameters as P
from game.appearance import estimate_skin_tone

Predictor = Callable[[torch.Tensor], torch.Tensor]
# The sliders that pick a hue or saturation: a grayscale photo cannot tell them, so they stay at 0 (the neutral face).
COLOUR_SLIDERS = (
    "skin_tone",
    "skin_undertone",
    "skin_redness",
    "eye_color",
    "sclera_tint",
    "brow_color",
    "hair_color",
    "hair_redness",
    "hair_saturation",
    "lip_color",
    "lip_saturation",
    "blush_hue",
    "eyeshadow_color",
)
# The spread of one slider across random characters of the training prior, U[-2.5, 2.5]: photos that disagree this
# much tell nothing about the slider (confidence 0); photos that agree exactly give confidence 1.
PRIOR_SPREAD = (P.HIGH - P.LOW) / np.sqrt(12)


def load_predictor(ckpt: str | Path | None, size: int = 256) -> Predictor:
    """images (B, 3, S, S) float RGB in [0, 1] -> parameters (B, 267), from a model file or 'none'.

    The file is read by eval.descriptors.load_parameter_model: a regression checkpoint (E and R), a reader
    checkpoint or an exported reader (weights/default/model.pt), told apart by the keys it holds; the model runs
    at the size it was trained at and other sizes are resized to it. Crops of `size` px take the fastest path that
    agrees with torch (eval.fast_inference: onnxruntime, on an export made once into runs/onnx and reused), others
    run eager. 'none' (or None) predicts the neutral face, all zeros. A file of another parameter table is refused:
    its 267 outputs mean other sliders.
    """
    if ckpt is None or str(ckpt).lower() == "none":
        return lambda images: torch.zeros(len(images), P.NUM_PARAMETERS)
    return fast_predictor(ckpt, size)


def read_face(face: AlignedFace, predictor: Predictor) -> np.ndarray:
    """(267,) float64 parameters the model reads from one aligned face, clipped to the range, before any rule."""
    image = torch.from_numpy(face.image).permute(2, 0, 1)[None].float() / 255
    params = predictor(image)[0].detach().cpu().double().numpy()
    # R ends in 2.5 * tanh; the clip only guards stand-in predictors and float round-off.
    return np.clip(params, P.LOW, P.HIGH)


def apply_rules(params: np.ndarray, colour: bool, skin_tone: float | None) -> np.ndarray:
    """(267,) float32 parameters after the colour rules: without `colour` (a grayscale photo) every slider of
    COLOUR_SLIDERS is neutral (0); otherwise a measured `skin_tone` (skin snap on) replaces the read one."""
    params = np.array(params, dtype=np.float64)
    if not colour:
        params[[P.index_of(name) for name in COLOUR_SLIDERS]] = 0
    elif skin_tone is not None:  # the regressor sees a domain-shifted photo; the skin's measured colour is surer
        params[P.index_of("skin_tone")] = skin_tone
    return P.validate(params, "predicted parameters")[0]


def reconstruct_face(face: AlignedFace, predictor: Predictor, snap_skin: bool, colour: bool = True) -> np.ndarray:
    """(267,) float32 parameters of one aligned face; skin tone from the photo's own pixels if `snap_skin`.

    Without `colour` (a grayscale photo) every slider of COLOUR_SLIDERS is neutral (0) and the skin is not snapped.
    """
    skin_tone = estimate_skin_tone(face.image)[0] if snap_skin and colour else None
    return apply_rules(read_face(face, predictor), colour, skin_tone)


def combine(rows: np.ndarray, colour: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """(per-slider median, per-slider spread or None) of (N, 267) per-photo parameters, the rules applied.

    The colour sliders are combined over the colour photos only (`colour`: (N,) bool), so one grayscale photo among
    colour ones does not pull them to neutral; with no colour photo they stay 0. The spread is the standard deviation
    across photos (ddof 1); None for one photo, and NaN (unknown) for a colour slider read from fewer than two colour
    photos.
    """
    rows, colour = np.asarray(rows, np.float64), np.asarray(colour, bool)
    if rows.ndim != 2 or rows.shape[1] != P.NUM_PARAMETERS or len(rows) != len(colour) or not len(rows):
        raise ValueError(f"combine: expected (N >= 1, {P.NUM_PARAMETERS}) rows and N colour flags, got {rows.shape}")
    median = np.median(rows, axis=0)
    spread = rows.std(axis=0, ddof=1) if len(rows) > 1 else None
    columns = [P.index_of(name) for name in COLOUR_SLIDERS]
    coloured = rows[colour][:, columns]
    median[columns] = np.median(coloured, axis=0) if len(coloured) else 0.0
    if spread is not None:
        spread[columns] = coloured.std(axis=0, ddof=1) if len(coloured) > 1 else np.nan
    return P.validate(median, "combined parameters")[0], spread


def confidence(spread: np.ndarray) -> np.ndarray:
    """Per-slider confidence in [0, 1] from the spread across photos: 1 - spread / PRIOR_SPREAD, floored at 0 (NaN
    where the spread is unknown)."""
    return np.clip(1.0 - np.asarray(spread, np.float64) / PRIOR_SPREAD, 0.0, 1.0)
