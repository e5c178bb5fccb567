"""The networks the screenshot-readability study trains: a timm ResNet-18 reference and the demo's E + R."""

from __future__ import annotations

from pathlib import Path

import torch
import yaml
from torch import nn

REPO = Path(__file__).resolve().parents[2]
NETWORKS = ("resnet18", "demo", "demo_unquantised")


class Unquantised(nn.Module):
    """Stands in for a codebook: passes the encoder's vectors through, no commitment loss."""

    def forward(self, z: torch.Tensor):
        return z, z.new_zeros(()), {}


class DemoNetworks(nn.Module):
    """The demo's E (VQ-VAE-2) and R (Table 1) from experiments/demo/main.yaml: images -> parameters, L_differ."""

    def __init__(self, quantised: bool = True) -> None:
        super().__init__()
        from models.checkpoints import build_network

        model = yaml.safe_load((REPO / "experiments/demo/main.yaml").read_text())["model"]["init_args"]
        self.encoder, self.regressor = build_network(model["encoder"]), build_network(model["regressor"])
        if not quantised:
            self.encoder.quantize_t, self.encoder.quantize_b = Unquantised(), Unquantised()

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        encoded = self.encoder(images)
        return self.regressor(encoded.features).parameters, encoded.loss


class Reference(nn.Module):
    """A timm classifier turned regressor; outputs scaled to the parameter range like R's."""

    def __init__(self, name: str, range_: float = 2.5) -> None:
        super().__init__()
        import timm

        from game.parameters import NUM_PARAMETERS

        self.net, self.range = timm.create_model(name, pretrained=False, num_classes=NUM_PARAMETERS), range_

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.range * torch.tanh(self.net(images * 2 - 1)), images.new_zeros(())


def build(name: str) -> nn.Module:
    """The network called `name` (one of NETWORKS), freshly initialised."""
    if name == "resnet18":
        return Reference("resnet18")
    return DemoNetworks(quantised=name == "demo")
