"""FastF2P (Shi et al., AAAI 2020): a translator MLP from the F_id embedding to the game parameters.

At test time: photo -> F_id -> translator -> parameters, one forward pass. Training (on a GAME screenshot set,
through the frozen imitator G and F_id), per batch of screenshots I with known parameters p*:
    e = F_id(I), p = T(e), e' = F_id(G(p))
    identity  1 - cos(e', e)                    FastF2P's facial identity loss
    content   L1(C(G(p)), C(I))                 its facial content loss (parsing net -> our stand-in C)
    loop      |T(e') - p| / 5                   its loop-back loss: a render of p must translate back to p
    parameter |p - p*| / 5                      supervised, possible only on a game set with known p*
Parameter terms are L1 in range units (/5: the paper's parameters lived in [0, 1]).

Architecture and optimiser as the csnowhermit/face2parameter port reads the paper: FC 512, three residual
attention blocks (FC 512-1024-512 with batch norm and an SE-style 512-16-512 sigmoid gate), FC to the
parameters; Adam, lr 1e-4. Deviations: F_id is ours (dlib by default, LightCNN-29 v2 if its checkpoint is
given), the embedding is L2-normalised (cosine is what identifies a face), the output is 2.5 tanh for our
range, there is no facial-prior subspace projection, the content net is a stand-in (eval/baselines/f2p.py),
the loss weights are balanced for our loss scales (paper: 0.01 identity, 1 content, 1 loop-back), and the
parameter loss is ours: we train on game renders with known parameters, where the paper used face photos.

    python -m eval.baselines.fastf2p --imitator IMITATOR.ckpt --data data/game-game-256 --out fastf2p.ckpt

(the command line is __main__.py).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader

from eval.baselines.f2p import CONTENT_WEIGHT, build_content, device_of
from game.parameters import HIGH, LOW, NUM_PARAMETERS
from models.modes import evaluating

log = logging.getLogger("eval.baselines.fastf2p")
WEIGHTS = {"identity": 1.0, "content": CONTENT_WEIGHT, "loop": 1.0, "parameter": 1.0}


class ResidualAttention(nn.Module):
    """FastF2P's residual attention block body: FC-BN-ReLU-FC-BN, gated by an SE-style sigmoid, then ReLU."""

    def __init__(self, width: int = 512, hidden: int = 1024, squeeze: int = 16) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Linear(width, hidden, bias=False),
            nn.BatchNorm1d(hidden),
            nn.ReLU(inplace=True),
            nn.Linear(hidden, width, bias=False),
            nn.BatchNorm1d(width),
        )
        self.gate = nn.Sequential(
            nn.Linear(width, squeeze), nn.ReLU(inplace=True), nn.Linear(squeeze, width), nn.Sigmoid()
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, width) -> (B, width), to be added to the input."""
        y = self.body(x)
        return F.relu(y * self.gate(y))


class Translator(nn.Module):
    """FastF2P's translator T: F_id embedding (B, D) -> game parameters (B, 267) in [-2.5, 2.5]."""

    def __init__(
        self,
        embedding_dim: int = 128,
        num_parameters: int = NUM_PARAMETERS,
        width: int = 512,
        hidden: int = 1024,
        blocks: int = 3,
        squeeze: int = 16,
    ) -> None:
        super().__init__()
        # Kept as attributes of the same names: a checkpoint rebuilds the net from them.
        self.embedding_dim, self.num_parameters = embedding_dim, num_parameters
        self.width, self.hidden, self.blocks, self.squeeze = width, hidden, blocks, squeeze
        self.head = nn.Linear(embedding_dim, width)
        self.body = nn.ModuleList(ResidualAttention(width, hidden, squeeze) for _ in range(blocks))
        self.tail = nn.Linear(width, num_parameters)

    def forward(self, embeddings: torch.Tensor) -> torch.Tensor:
        """(B, embedding_dim) F_id embeddings (normalised here) -> (B, num_parameters) in [-2.5, 2.5]."""
        x = self.head(F.normalize(embeddings, dim=1))
        for block in self.body:
            x = x + block(x)
        return HIGH * torch.tanh(self.tail(x))


class FastF2P:
    """FastF2P at test time: photos (B, 3, S, S) in [0, 1] -> F_id -> translator -> parameters (B, 267)."""

    name = "fastf2p"
    is_parameters = True

    def __init__(self, translator: Translator, face_id: nn.Module) -> None:
        self.translator, self.face_id = translator, face_id

    @torch.inference_mode()
    def __call__(self, photos: torch.Tensor) -> torch.Tensor:
        """Template-aligned photos (B, 3, S, S) in [0, 1] -> parameters (B, 267) in [-2.5, 2.5], one pass."""
        with evaluating(self.translator, self.face_id):
            photos = photos.to(device_of(self.translator), torch.float32)
            return self.translator(self.face_id(photos))


def translator_losses(
    translator: Translator,
    imitator: nn.Module,
    face_id: nn.Module,
    content: nn.Module,
    images: torch.Tensor,
    parameters: torch.Tensor,
) -> dict[str, torch.Tensor]:
    """The four training terms (scalars) on a batch of game screenshots (B, 3, S, S) with their parameters."""
    with torch.no_grad():  # the targets: F_id and C are frozen and the screenshots are data
        embeddings, target_content = face_id(images), content(images)
    predicted = translator(embeddings)
    rendered = imitator(predicted)
    rendered_embeddings = face_id(rendered)
    span = HIGH - LOW
    return {
        "identity": (1 - F.cosine_similarity(rendered_embeddings, embeddings, dim=1)).mean(),
        "content": (content(rendered) - target_content).abs().mean(),
        "loop": (translator(rendered_embeddings) - predicted).abs().mean() / span,
        "parameter": (predicted - parameters).abs().mean() / span,
    }


def _batches(loader: DataLoader, device: torch.device):
    """(images float [0, 1], parameters) on `device`, batch by batch."""
    for batch in loader:
        yield batch["image"].to(device).float() / 255, batch["parameters"].to(device)


def train_translator(
    imitator: nn.Module,
    face_id: nn.Module,
    data: str | Path,
    epochs: int = 20,
    batch_size: int = 64,
    lr: float = 1e-4,
    content: nn.Module | None = None,
    weights: dict[str, float] | None = None,
    seed: int = 0,
    workers: int = 0,
) -> tuple[Translator, list[dict]]:
    """Train a translator on a game screenshot set through the frozen imitator and F_id: (translator, history).

    Rows: the set's split.json "train" rows when a DataModule has written one (then its "val" rows are
    validated each epoch), else every row. history holds each epoch's mean training terms (and val/*).
    """
    from datamodules.screenshots import ScreenshotDataset, open_screenshot_set

    weights = {**WEIGHTS, **(weights or {})}
    if set(weights) != set(WEIGHTS):
        raise ValueError(f"loss weights must be among {sorted(WEIGHTS)}, got {sorted(weights)}")
    content = content if content is not None else build_content("pixels")
    device = device_of(imitator)
    torch.manual_seed(seed)
    translator = Translator(getattr(face_id, "embedding_dim", 128), imitator.num_parameters).to(device)
    content = content.to(device)

    screenshots = open_screenshot_set(data)
    split_path = Path(data) / "split.json"
    split = json.loads(split_path.read_text()) if split_path.is_file() else None
    train_rows = split["train"] if split else range(len(screenshots))
    size = getattr(imitator, "image_size", None)
    train_set = ScreenshotDataset(screenshots, train_rows, image_size=size)
    if len(train_set) < 2:
        raise ValueError(f"{data}: the translator's batch norm needs at least 2 training rows, got {len(train_set)}")
    loader = DataLoader(
        train_set,
        batch_size=min(batch_size, len(train_set)),
        shuffle=True,
        drop_last=True,
        num_workers=workers,
        generator=torch.Generator().manual_seed(seed),
    )
    val_loader = (
        DataLoader(
            ScreenshotDataset(screenshots, split["val"], image_size=size), batch_size=batch_size, num_workers=workers
        )
        if split and split["val"]
        else None
    )

    optimizer = torch.optim.Adam(translator.parameters(), lr=lr)
    history = []
    with evaluating(imitator, face_id, content):
        for epoch in range(epochs):
            translator.train()
            sums, batches = {}, 0
            for images, parameters in _batches(loader, device):
                terms = translator_losses(translator, imitator, face_id, content, images, parameters)
                loss = sum(weights[name] * value for name, value in terms.items())
                # Only the translator's weights: the frozen networks never receive a .grad.
                grads = torch.autograd.grad(loss, list(translator.parameters()))
                for param, grad in zip(translator.parameters(), grads):
                    param.grad = grad
                optimizer.step()
                for name, value in {**terms, "loss": loss}.items():
                    sums[name] = sums.get(name, 0.0) + value.item()
                batches += 1
            record = {"epoch": epoch, **{f"train/{k}": v / batches for k, v in sums.items()}}
            if val_loader is not None:
                record.update(_validate(translator, imitator, face_id, content, val_loader, weights, device))
            history.append(record)
            log.info("epoch %d: %s", epoch, " ".join(f"{k} {v:.4f}" for k, v in record.items() if k != "epoch"))
    return translator.eval(), history


@torch.no_grad()
def _validate(translator, imitator, face_id, content, loader, weights, device) -> dict[str, float]:
    """Mean terms over the validation rows, as val/*."""
    translator.eval()
    sums, count = {}, 0
    for images, parameters in _batches(loader, device):
        terms = translator_losses(translator, imitator, face_id, content, images, parameters)
        terms["loss"] = sum(weights[name] * value for name, value in terms.items())
        for name, value in terms.items():
            sums[name] = sums.get(name, 0.0) + float(value) * len(images)
        count += len(images)
    return {f"val/{k}": v / count for k, v in sums.items()}


def save_translator(path: str | Path, translator: Translator, face_id: str, **meta) -> Path:
    """Write a translator checkpoint readable by models.checkpoints.load_network(path, "translator")."""
    from models.checkpoints import network_spec

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {f"translator.{k}": v.cpu() for k, v in translator.state_dict().items()}
    torch.save(
        {"hyper_parameters": {"translator": network_spec(translator), "face_id": face_id, **meta}, "state_dict": state},
        path,
    )
    return path


def load_fastf2p(path: str | Path, face_id_checkpoint: str | None = None, device: str = "cpu") -> FastF2P:
    """FastF2P from a translator checkpoint, with the F_id it was trained with (LightCNN needs its checkpoint)."""
    from models.checkpoints import load_network, read_checkpoint
    from models.face_id import build_face_id

    meta = read_checkpoint(path).get("hyper_parameters", {})
    if "face_id" not in meta:
        raise KeyError(
            f"{path}: no hyper_parameters['face_id']; expected a checkpoint written by "
            f"`python -m eval.baselines.fastf2p`"
        )
    translator = load_network(path, "translator").to(device)
    return FastF2P(translator, build_face_id(meta["face_id"], face_id_checkpoint).to(device))
