"""Frozen face-identity extractors F_id: dlib's ResNet-34 descriptor (default, offline) and LightCNN-29 v2.

Every extractor takes faces aligned to the template of docs/contracts.md section 2, (B, 3, S, S) float RGB in
[0, 1] at any S, cuts its own input crop from the template with a fixed similarity transform (no second
detection), normalises as its network expects, and returns (B, embedding_dim) features. Gradients flow to the
image; the weights are non-persistent buffers, so they never require grad and never enter a checkpoint, and
the module stays in eval mode whatever a parent asks.

One network family per file, this factory apart: models/dlib_resnet.py, models/lightcnn.py (common parts in
models/extractor.py).
"""

from __future__ import annotations

import os

from models.dlib_resnet import DlibFaceDescriptor
from models.extractor import FrozenExtractor
from models.lightcnn import LIGHTCNN_FILE, LightCNN29v2

EXTRACTORS = ("dlib", "lightcnn29v2")


def build_face_id(name: str = "dlib", checkpoint: str | os.PathLike | None = None) -> FrozenExtractor:
    """The face-identity extractor F_id by name: 'dlib' (weights from the cache, or the folder `checkpoint`)
    or 'lightcnn29v2' (`checkpoint` = the official LightCNN_29Layers_V2_checkpoint.pth.tar)."""
    alternatives = (
        f"alternatives: 'dlib' (weights made by `python -m models fetch`, or checkpoint=a "
        f"folder holding face_recognition_model-weights_manifest.json and .bin) or 'lightcnn29v2' "
        f"(checkpoint=path to the official {LIGHTCNN_FILE})"
    )
    if name not in EXTRACTORS:
        raise ValueError(f"unknown face-ID extractor {name!r}; {alternatives}")
    try:
        if name == "dlib":
            return DlibFaceDescriptor(checkpoint)
        if checkpoint is None:
            raise FileNotFoundError(f"LightCNN-29 v2 needs checkpoint=path to the official {LIGHTCNN_FILE}")
        return LightCNN29v2.from_checkpoint(checkpoint)
    except (OSError, ValueError) as error:
        raise type(error)(f"face-ID extractor {name!r} could not be loaded: {error}; {alternatives}") from error
