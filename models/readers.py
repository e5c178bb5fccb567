"""Readers: networks that read the game parameters from a picture, trained on their own (no imitator, no photos).

A reader maps images (B, 3, S, S) in [0, 1] to ReaderOutput(parameters (B, 267) in [-2.5, 2.5], loss ()): the
network's own auxiliary loss (a codebook's commitment), zero when it has none. lightning_modules.reader trains one.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

from game.parameters import NUM_PARAMETERS
from models.regressor import Regressor
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
