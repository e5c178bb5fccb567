"""F2P (Shi et al., ICCV 2019): per-photo search of the game parameters through the frozen imitator.

For each photo y the parameters p minimise  L(p) = [1 - cos(F_id(G(p)), F_id(y))] + w * L1(C(G(p)), C(y)),
F2P's "discriminative" (identity) loss plus its "facial content" loss, by gradient steps on p alone; the
imitator G, F_id and the content extractor C stay frozen. Many photos are searched at once: the objective is a
sum of per-photo terms and Adam is element-wise, so each photo follows the path it would follow alone.

The paper, as its public ports (huailiang/face-nn, csnowhermit/face2parameter) restate it, used LightCNN-29 v2,
a ResNet-50 face-parsing net, L = alpha L_id + L_content with alpha = 0.01, plain gradient descent on
parameters in [0, 1] with the lr decayed x0.8 every 5 iterations (lr 10, T = 50 iterations as we recall the
paper; face-nn runs 400 steps). Deviations: F_id is ours (dlib by default); no parsing net is available
offline, so C is a stand-in (TemplateContent: lighting-normalised grey levels in the template's face oval, or
the landmark net's pose-free geometry) with its weight set for our scales; Adam for 400 steps on z with
p = 2.5 tanh(z) (always in range, no clamping), the lr decayed by the paper's overall factor 0.8^10 over the
run; the start is the neutral face p = 0 (face-nn's 0.5 of [0, 1]).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from game.parameters import HIGH, NUM_PARAMETERS
from models.modes import evaluating

GRAY = (0.299, 0.587, 0.114)
# The face oval in template fractions (docs/contracts.md section 2): eyes at y 0.44, mouth at 0.70, chin about
# 0.88; it spans brows to chin and cheek to cheek, and leaves out hair, ears and background.
FACE_OVAL_CENTRE = (0.5, 0.57)
FACE_OVAL_RADII = (0.27, 0.35)
# The paper's alpha = 0.01 belongs to LightCNN's and its parsing net's scales, so the weight is set afresh:
# between two random 64 px game renders, dlib's 1 - cos is 0.105 +- 0.022 and TemplateContent's L1 is
# 0.76 +- 0.13 (32 faces), so 0.15 gives the two terms about equal swings from a match to a stranger.
CONTENT_WEIGHT = 0.15
# Of 0.03, 0.1 and 0.3, 0.1 reached the lowest objective after 400 steps, on 8 game screenshots and on 8
# imitator renders (64 px demo imitator, dlib F_id).
LEARNING_RATE = 0.1
LR_DECAY = 0.8**10  # the paper's total decay over its search (x0.8 every 5 of 50 iterations)


class TemplateContent(nn.Module):
    """F2P's content stand-in: lighting-normalised grey levels in the template's face oval, (B, 3, S, S) -> (B, n*n).

    Photos and renders differ in light, exposure and colour cast, so each face is standardised (mean 0, std 1
    inside the oval) and compared at low resolution (n px): what remains is the layout of brows, eyes, nose and
    mouth, which is what the paper's parsing features carried. Features are scaled so that the mean absolute
    difference of two of them is the oval-weighted mean pixel difference.
    """

    def __init__(self, size: int = 32) -> None:
        super().__init__()
        self.size = size
        centres = (torch.arange(size) + 0.5) / size
        y, x = torch.meshgrid(centres, centres, indexing="ij")
        (cx, cy), (rx, ry) = FACE_OVAL_CENTRE, FACE_OVAL_RADII
        mask = (((x - cx) / rx) ** 2 + ((y - cy) / ry) ** 2 <= 1).float()
        self.register_buffer("mask", mask / mask.sum(), persistent=False)  # weights summing to 1
        self.register_buffer("gray", torch.tensor(GRAY).view(1, 3, 1, 1), persistent=False)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, S, S) template-aligned RGB in [0, 1] -> (B, size * size) standardised, oval-weighted grey levels."""
        gray = (images * self.gray).sum(1)
        gray = F.interpolate(gray[:, None], size=self.size, mode="bilinear", antialias=True, align_corners=False)[:, 0]
        mean = (gray * self.mask).sum((1, 2), keepdim=True)
        std = ((gray - mean).square() * self.mask).sum((1, 2), keepdim=True).sqrt()
        # A floor on the std: a flat face (an untrained imitator's grey blob) must not blow up into noise.
        standardised = (gray - mean) / std.clamp_min(0.02)
        return (standardised * self.mask * self.mask.numel()).flatten(1)


def build_content(name: str = "pixels") -> nn.Module:
    """F2P's content extractor stand-in by name: 'pixels' (TemplateContent) or 'landmarks' (models.face_geometry)."""
    if name == "pixels":
        return TemplateContent()
    if name == "landmarks":
        from models.face_geometry import build_face_geometry

        return build_face_geometry("landmarks")
    raise ValueError(f"unknown F2P content extractor {name!r}; expected 'pixels' or 'landmarks'")


def device_of(module: nn.Module) -> torch.device:
    """The device a module's weights (parameters, else buffers) live on; CPU for a weightless one."""
    tensor = next(module.parameters(), None)
    tensor = tensor if tensor is not None else next(module.buffers(), None)
    return tensor.device if tensor is not None else torch.device("cpu")


class F2P:
    """F2P's parameter search: photos (B, 3, S, S) in [0, 1] -> parameters (B, 267) in [-2.5, 2.5]."""

    name = "f2p"
    is_parameters = True

    def __init__(
        self,
        imitator: nn.Module,
        face_id: nn.Module,
        steps: int = 400,
        lr: float = LEARNING_RATE,
        content_weight: float = CONTENT_WEIGHT,
        content: nn.Module | None = None,
        lr_decay: float = LR_DECAY,
    ) -> None:
        if steps < 1 or lr <= 0 or not 0 < lr_decay <= 1:
            raise ValueError(f"F2P needs steps >= 1, lr > 0 and 0 < lr_decay <= 1; got {steps}, {lr}, {lr_decay}")
        self.imitator, self.face_id = imitator, face_id
        self.content = content if content is not None else TemplateContent()
        self.steps, self.lr, self.content_weight, self.lr_decay = steps, lr, content_weight, lr_decay
        self.num_parameters = getattr(imitator, "num_parameters", NUM_PARAMETERS)

    def objective(
        self, parameters: torch.Tensor, target_id: torch.Tensor, target_content: torch.Tensor
    ) -> torch.Tensor:
        """Per-photo loss (B,): identity (1 - cosine of F_id embeddings) + content_weight * content L1."""
        rendered = self.imitator(parameters)
        identity = 1 - F.cosine_similarity(self.face_id(rendered), target_id, dim=1)
        content = (self.content(rendered) - target_content).abs().mean(1)
        return identity + self.content_weight * content

    def optimise(self, photos: torch.Tensor, initial: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Search parameters for each photo: (parameters (B, 267), objective before each step (steps, B)).

        `initial` (B, 267) starts the search elsewhere than the neutral face (e.g. from FastF2P's output).
        """
        device = device_of(self.imitator)
        # The search needs autograd even when the caller evaluates under inference_mode or no_grad.
        with evaluating(self.imitator, self.face_id, self.content), torch.inference_mode(False), torch.enable_grad():
            photos = photos.to(device, torch.float32).clone()  # a normal tensor, even if made in inference mode
            with torch.no_grad():
                target_id, target_content = self.face_id(photos), self.content(photos)
            if initial is None:
                z = torch.zeros(len(photos), self.num_parameters, device=device)
            else:  # 0.999: a start on the bound would sit where tanh has no gradient
                z = torch.atanh((initial.to(device, torch.float32) / HIGH).clamp(-0.999, 0.999))
            z.requires_grad_(True)
            optimizer = torch.optim.Adam([z], lr=self.lr)
            schedule = torch.optim.lr_scheduler.ExponentialLR(optimizer, self.lr_decay ** (1 / self.steps))
            history = []
            for _ in range(self.steps):
                losses = self.objective(HIGH * torch.tanh(z), target_id, target_content)
                history.append(losses.detach())
                # Gradient with respect to z only: the frozen networks' weights never receive a .grad.
                (z.grad,) = torch.autograd.grad(losses.sum(), z)
                optimizer.step()
                schedule.step()
            return (HIGH * torch.tanh(z)).detach(), torch.stack(history)

    def __call__(self, photos: torch.Tensor) -> torch.Tensor:
        """Template-aligned photos (B, 3, S, S) in [0, 1] -> searched parameters (B, 267) in [-2.5, 2.5]."""
        return self.optimise(photos)[0]


def load_f2p(
    imitator_checkpoint: str,
    face_id: str = "dlib",
    face_id_checkpoint: str | None = None,
    content: str = "pixels",
    device: str = "cpu",
    **options,
) -> F2P:
    """F2P on an imitator checkpoint (models.checkpoints) and F_id by name; options go to F2P."""
    from models.checkpoints import load_network
    from models.face_id import build_face_id

    imitator = load_network(imitator_checkpoint, "net").to(device)
    return F2P(
        imitator,
        build_face_id(face_id, face_id_checkpoint).to(device),
        content=build_content(content).to(device),
        **options,
    )
