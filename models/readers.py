"""Readers: networks that read the game parameters from a picture, trained on their own (no imitator, no photos).
FaceFeatureReader (not in the paper) reads them from frozen real-face features through a small trainable head.

A reader maps images (B, 3, S, S) in [0, 1] to ReaderOutput(parameters (B, 267) in [-2.5, 2.5], loss ()): the
network's own auxiliary loss (a codebook's commitment), zero when it has none. lightning_modules.reader trains one.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import NamedTuple

import torch
from torch import nn

from game.parameters import NUM_PARAMETERS
from models.face_features import FaceFeatures
from models.regressor import Regressor
from models.resize import resize_to
from models.vqvae2 import VQVAE2


class ReaderOutput(NamedTuple):
    """What a reader returns: the parameters it reads and its auxiliary loss."""

    parameters: torch.Tensor  # (B, 267) in [-2.5, 2.5]
    loss: torch.Tensor  # () added to the training loss with the module's auxiliary_weight


class TimmReader(nn.Module):
    """A timm image model from scratch with a 267-way head, tanh-scaled to the parameter range like R's."""

    def __init__(self, model_name: str = "resnet18", parameter_range: float = 2.5) -> None:
        super().__init__()
        import timm  # here: timm takes seconds to import

        self.model_name, self.parameter_range = model_name, parameter_range
        self.net = timm.create_model(model_name, pretrained=False, num_classes=NUM_PARAMETERS)

    def forward(self, images: torch.Tensor) -> ReaderOutput:
        """Images (B, 3, S, S) in [0, 1] -> parameters (B, 267), no auxiliary loss."""
        return ReaderOutput(self.parameter_range * torch.tanh(self.net(images * 2 - 1)), images.new_zeros(()))


class Unquantised(nn.Module):
    """Stands in for a codebook: passes the encoder's vectors through, no commitment loss."""

    def forward(self, z: torch.Tensor):
        """The Quantizer's (quantised, loss, stats) with z unchanged."""
        return z, z.new_zeros(()), {}


class EncoderRegressorReader(nn.Module):
    """The method's E (VQ-VAE-2 encoder, models.vqvae2) then R (Table 1, models.regressor), trained together;
    `quantised=False` bypasses both codebooks."""

    def __init__(self, encoder: VQVAE2, regressor: Regressor, quantised: bool = True) -> None:
        super().__init__()
        self.encoder, self.regressor, self.quantised = encoder, regressor, quantised
        if not quantised:
            encoder.quantize_t, encoder.quantize_b = Unquantised(), Unquantised()

    def forward(self, images: torch.Tensor) -> ReaderOutput:
        """Images (B, 3, S, S) in [0, 1] -> R's parameters (B, 267) and E's commitment loss."""
        encoded = self.encoder(images)  # features (B, 2 * embed_dim, S/4, S/4)
        return ReaderOutput(self.regressor(encoded.features).parameters, encoded.loss)


PICTURE_KEY_BYTES = 16  # FaceFeatureReader's cache key: a blake2b digest of the picture's float32 bytes


class FaceFeatureReader(nn.Module):
    """NOT in the paper (issue 13 item 2): frozen real-face features (models.face_features.FaceFeatures: `mesh`,
    `identity`, `colour`), standardised, then a small trainable MLP -> parameters, 2.5 tanh like R's, starting at
    the neutral face. No gradient reaches the image or the frozen networks.

    Standardisation: per-feature mean and std fitted on the first `statistics_batches` training batches (running
    sums in persistent buffers, summed over DDP ranks, so a checkpoint keeps them; each of those batches is
    standardised with the sums so far, itself included), then fixed. Before any training batch (Lightning's sanity
    validation) features pass unstandardised.
    Cache: the frozen features of up to `cache_rows` images are kept in memory, keyed by a hash of the image's bytes
    (the nets are deterministic in eval mode, so a hit is the feature recomputed exactly); later epochs over the same
    screenshots then cost only the head. 0 turns it off (augmented images never repeat).
    """

    def __init__(
        self,
        features: Sequence[str] = ("mesh", "identity", "colour"),
        hidden: int = 256,
        dropout: float = 0.5,
        parameter_range: float = 2.5,
        statistics_batches: int = 8,
        cache_rows: int = 100_000,
    ) -> None:
        super().__init__()
        self.extractor = FaceFeatures(features)
        self.features = list(self.extractor.groups)
        self.hidden, self.dropout, self.parameter_range = hidden, dropout, parameter_range
        self.statistics_batches, self.cache_rows = statistics_batches, cache_rows
        width = self.extractor.width
        self.register_buffer("feature_sum", torch.zeros(width, dtype=torch.float64))
        self.register_buffer("feature_square_sum", torch.zeros(width, dtype=torch.float64))
        self.register_buffer("statistics_rows", torch.zeros((), dtype=torch.float64))
        self.register_buffer("statistics_batches_seen", torch.zeros((), dtype=torch.int64))
        self.head = nn.Sequential(
            nn.Linear(width, hidden), nn.GELU(), nn.Dropout(dropout), nn.Linear(hidden, NUM_PARAMETERS)
        )
        with torch.no_grad():  # start at the neutral face, as models.regressor does: small, not zero, so all learn
            self.head[-1].weight.mul_(0.01)
            self.head[-1].bias.zero_()
        self._cache: dict[bytes, torch.Tensor] = {}

    def frozen_features(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, S, S) -> (B, width) frozen features, from the cache where the same image was seen before."""
        if not self.cache_rows:
            return self.extractor(images)
        rows = images.detach().float().cpu().numpy()
        keys = [hashlib.blake2b(row.tobytes(), digest_size=PICTURE_KEY_BYTES).digest() for row in rows]
        missing = [i for i, key in enumerate(keys) if key not in self._cache]
        computed = dict(zip(missing, self.extractor(images[missing]))) if missing else {}
        for i, feature in computed.items():
            if len(self._cache) < self.cache_rows:
                self._cache[keys[i]] = feature
        return torch.stack([computed[i] if i in computed else self._cache[key] for i, key in enumerate(keys)])

    def standardise(self, features: torch.Tensor) -> torch.Tensor:
        """Features minus the fitted mean over the fitted std; in training, first add this batch to the fit."""
        if self.training and self.statistics_batches_seen < self.statistics_batches:
            sums = torch.stack([features.double().sum(0), features.double().square().sum(0)])
            rows = features.new_full((), features.shape[0], dtype=torch.float64)
            if torch.distributed.is_available() and torch.distributed.is_initialized():
                torch.distributed.all_reduce(sums)
                torch.distributed.all_reduce(rows)
            self.feature_sum += sums[0]
            self.feature_square_sum += sums[1]
            self.statistics_rows += rows
            self.statistics_batches_seen += 1
        rows = self.statistics_rows.clamp_min(1.0)  # counts are whole: this only keeps 0 / 0 out of the graph
        mean = self.feature_sum / rows
        std = (self.feature_square_sum / rows - mean.square()).clamp_min(0.0).sqrt().clamp_min(1e-6)
        standardised = ((features.double() - mean) / std).float()
        # A select, not a Python `if` on a buffer: the graph then exports (eval.export) with the choice in it.
        return torch.where(self.statistics_rows > 0, standardised, features)

    def forward(self, images: torch.Tensor) -> ReaderOutput:
        """Images (B, 3, S, S) in [0, 1], template-aligned -> parameters (B, 267), no auxiliary loss."""
        features = self.standardise(self.frozen_features(images))
        return ReaderOutput(self.parameter_range * torch.tanh(self.head(features)), images.new_zeros(()))


def without_feature_caches(net: nn.Module) -> nn.Module:
    """`net` with the feature cache of every FaceFeatureReader in it turned off, members of an ensemble included:
    the cache serves training epochs over the same pictures; a pass over new ones only fills memory, and its byte
    hashing is no graph op (eval.onnx_export)."""
    for module in net.modules():
        if isinstance(module, FaceFeatureReader):
            module.cache_rows = 0
    return net


class MeanOfReaders(nn.Module):
    """An ensemble of trained readers: the mean of their parameters, each reading the picture at the size it was
    trained at (None: as given). Not in the paper; nothing is fitted, so it needs no data of its own."""

    def __init__(self, readers: Sequence[nn.Module], image_sizes: Sequence[int | None]) -> None:
        super().__init__()
        if not readers or len(readers) != len(image_sizes):
            raise ValueError(f"need one image size per reader, got {len(readers)} readers, {len(image_sizes)} sizes")
        self.readers, self.image_sizes = nn.ModuleList(readers), list(image_sizes)

    def forward(self, images: torch.Tensor) -> ReaderOutput:
        """Images (B, 3, S, S) in [0, 1] -> the members' mean parameters (B, 267) and the sum of their losses."""
        outputs = [reader(resize_to(images, size)) for reader, size in zip(self.readers, self.image_sizes)]
        parameters = torch.stack([output.parameters for output in outputs]).mean(0)
        return ReaderOutput(parameters, sum(output.loss for output in outputs))
