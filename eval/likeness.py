"""Likeness of what the player actually gets: the ENGINE's character, not the imitator's picture of it.

For photos and the parameters a method regressed from them: the face-ID cosine between each photo and
the engine's render of its parameters, and how far the imitator's picture of the same parameters is
from the engine's (the gap every imitator-trained method hides).
"""

from __future__ import annotations

import numpy as np
import torch
from torchmetrics.functional.image import peak_signal_noise_ratio

from game.engine import engine_renders


@torch.no_grad()
def player_likeness(photos: torch.Tensor, parameters: np.ndarray, face_id, imitator=None, batch_size: int = 32) -> dict:
    """Face-ID cosine photo vs engine render (mean, std, per photo) and the imitator-vs-engine PSNR."""
    size = photos.shape[-1]
    renders = engine_renders(parameters, size)
    cosines, gaps = [], []
    for start in range(0, len(photos), batch_size):
        photo, render = photos[start : start + batch_size], renders[start : start + batch_size]
        # .cpu(): F_id may run on the GPU (verify.py's --device), the engine's renders and the result stay here.
        cosines.append(torch.nn.functional.cosine_similarity(face_id(photo), face_id(render), dim=1).float().cpu())
        if imitator is not None:
            imitated = imitator(torch.as_tensor(parameters[start : start + batch_size]).float())
            imitated = (
                torch.nn.functional.interpolate(imitated, size=size, mode="bilinear", antialias=True)
                if imitated.shape[-1] != size
                else imitated
            )
            gaps += [peak_signal_noise_ratio(i[None], r[None], data_range=1.0).item() for i, r in zip(imitated, render)]
    cosine = torch.cat(cosines).numpy()
    result = {
        "face_id_cosine": float(cosine.mean()),
        "face_id_cosine_std": float(cosine.std()),
        "per_photo": cosine.tolist(),
        "count": len(cosine),
    }
    if gaps:
        result["imitator_vs_engine_psnr_db"] = float(np.mean(gaps))
    return result
