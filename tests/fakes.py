"""The library of fakes: tiny screenshot and photo sets on disk in the exact layouts of docs/contracts.md
section 4, tiny networks and checkpoints in the layout of section 6, and a free TCP port.
tests/conftest.py makes fixtures over them."""

from __future__ import annotations

import csv
import json
import socket
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

NUM_PARAMETERS = 267


def fake_parameters(count: int, seed: int = 0) -> np.ndarray:
    """Parameters drawn like the game's prior, U[-2.5, 2.5]^267, float32 (count, 267)."""
    return np.random.default_rng(seed).uniform(-2.5, 2.5, (count, NUM_PARAMETERS)).astype(np.float32)


def fake_render(parameters: np.ndarray, size: int) -> np.ndarray:
    """A stand-in engine: a disc whose colour, centre and radius follow the first parameters; uint8 (S, S, 3)."""
    p = (parameters[:8] + 2.5) / 5.0  # [0, 1]
    y, x = np.mgrid[0:size, 0:size] / size
    inside = (x - 0.3 - 0.4 * p[3]) ** 2 + (y - 0.3 - 0.4 * p[4]) ** 2 < (0.1 + 0.2 * p[5]) ** 2
    image = np.empty((size, size, 3), np.float32)
    image[:] = 0.2 + 0.3 * p[6]  # background
    image[inside] = p[:3]
    return (image * 255).astype(np.uint8)


def write_screenshot_set(
    root: str | Path,
    count: int = 16,
    size: int = 64,
    style: str = "game",
    complete: bool = True,
    seed: int = 0,
    parameters: np.ndarray | None = None,
) -> Path:
    """Write a format-v1 set (manifest.json, parameters.npy, images/{i:07d}.png|jpg) and return its root."""
    root = Path(root)
    (root / "images").mkdir(parents=True, exist_ok=True)
    parameters = fake_parameters(count, seed) if parameters is None else parameters
    image_format = "png" if style == "game" else "jpg"
    for i, row in enumerate(np.nan_to_num(np.clip(parameters, -2.5, 2.5))):
        image = Image.fromarray(fake_render(row, size))
        image.save(root / "images" / f"{i:07d}.{image_format}", **({"quality": 95} if image_format == "jpg" else {}))
    np.save(root / "parameters.npy", parameters)
    manifest = {
        "format_version": 1,
        "kind": "likeness.screenshots",
        "style": style,
        "size": size,
        "count": count,
        "seed": seed,
        "image_format": image_format,
        "num_parameters": NUM_PARAMETERS,
        "parameter_range": [-2.5, 2.5],
        "parameter_table_version": "fake-table-v1",
        "prior": "uniform",
        "complete": complete,
    }
    (root / "manifest.json").write_text(json.dumps(manifest, indent=2))
    return root


def write_game_folder(root: str | Path, count: int = 8, size: int = 48, header: bool = True, seed: int = 0) -> Path:
    """Write an any-game folder (images/*.png + parameters.csv with filename,p0..p266) and return its root."""
    root = Path(root)
    (root / "images").mkdir(parents=True, exist_ok=True)
    parameters = fake_parameters(count, seed)
    with (root / "parameters.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        if header:
            writer.writerow(["filename"] + [f"p{j}" for j in range(NUM_PARAMETERS)])
        for i, row in enumerate(parameters):
            name = f"face_{i:03d}.png"
            Image.fromarray(fake_render(row, size)).save(root / "images" / name)
            writer.writerow([name] + [repr(float(v)) for v in row])
    return root


# ------------------------------------------------------------------------------------------ photo sets (source)

CELEBA_SIZE = (178, 218)  # width, height of CelebA's img_align_celeba images
CELEBA_TYPICAL_POINTS = np.array([[69, 111], [108, 111], [88, 136], [72, 152], [105, 152]])  # pixel indices


def fake_face(width: int, height: int, points: np.ndarray, seed: int = 0) -> np.ndarray:
    """A noisy grey photo with a bright 5x5 dot on each point (pixel-index coordinates); uint8 (H, W, 3)."""
    rng = np.random.default_rng(seed)
    image = rng.integers(40, 90, (height, width, 3)).astype(np.uint8)
    for x, y in np.round(points).astype(int):
        image[max(0, y - 2) : y + 3, max(0, x - 2) : x + 3] = 255
    return image


def write_celeba(
    root: str | Path, identities: int = 8, photos_per_identity: int = 3, landmarks: bool = True, seed: int = 0
) -> Path:
    """Write a fake CelebA tree as published (img_align_celeba/*.jpg, identity_CelebA.txt, list_eval_partition.txt
    and, with landmarks, list_landmarks_align_celeba.txt) and return its root.

    Identity i has label 100 + 7 i; the last identity is in the test partition, the two before it in val,
    the rest in train. Landmarks jitter around CelebA's typical points, in CelebA's column order.
    """
    root = Path(root)
    (root / "img_align_celeba").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    identity_lines, partition_lines, landmark_lines = [], [], []
    count = identities * photos_per_identity
    for n in range(count):
        name, person = f"{n + 1:06d}.jpg", n % identities  # photos of one person are scattered, as in CelebA
        points = CELEBA_TYPICAL_POINTS + rng.integers(-3, 4, (5, 2))
        Image.fromarray(fake_face(*CELEBA_SIZE, points, seed=n)).save(root / "img_align_celeba" / name, quality=95)
        partition = 2 if person == identities - 1 else 1 if person >= identities - 3 else 0
        identity_lines.append(f"{name} {100 + 7 * person}")
        partition_lines.append(f"{name} {partition}")
        landmark_lines.append(f"{name:<10} " + " ".join(f"{v:4d}" for v in points.ravel()))
    (root / "identity_CelebA.txt").write_text("\n".join(identity_lines) + "\n")
    (root / "list_eval_partition.txt").write_text("\n".join(partition_lines) + "\n")
    if landmarks:
        header = " ".join(
            f"{point}_{axis}" for point in ("lefteye", "righteye", "nose", "leftmouth", "rightmouth") for axis in "xy"
        )
        (root / "list_landmarks_align_celeba.txt").write_text(f"{count}\n{header}\n" + "\n".join(landmark_lines) + "\n")
    return root


def write_photo_folders(
    root: str | Path, identities: int = 6, photos_per_identity: int = 3, size: int = 40, landmarks: bool = False
) -> Path:
    """Write ROOT/<person>/*.jpg|png square photos and, with landmarks, ROOT/landmarks.csv (relative path, then
    x, y of the five template points in pixels, template order); return the root."""
    from game.framing import TEMPLATE

    root = Path(root)
    rows = []
    for person in range(identities):
        folder = root / f"person_{person:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        for k in range(photos_per_identity):
            name = f"photo_{k}.{'png' if k % 2 else 'jpg'}"
            points = TEMPLATE * size * 0.9 + size * 0.05  # slightly zoomed out from the template
            Image.fromarray(fake_face(size, size, points - 0.5, seed=person * 10 + k)).save(folder / name)
            rows.append([f"{folder.name}/{name}"] + [f"{v:.3f}" for v in points.ravel()])
    if landmarks:
        with (root / "landmarks.csv").open("w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["path"] + [f"{p}_{a}" for p in ("reye", "leye", "nose", "rmouth", "lmouth") for a in "xy"])
            writer.writerows(rows)
    return root


# ------------------------------------------------------------------------------------ networks and checkpoints


def write_network_checkpoint(path: str | Path, extra: dict | None = None, **networks: nn.Module) -> Path:
    """Write the parts of a Lightning checkpoint that load_network reads (docs/contracts.md section 6): each
    network's {"class_path", "init_args"} under hyper_parameters[name], its weights under "name." in state_dict;
    `extra` adds top-level entries (frozen_sources, CrossDomainDataModule). Returns the path."""
    from models.checkpoints import network_spec

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    checkpoint = {
        "hyper_parameters": {name: network_spec(net) for name, net in networks.items()},
        "state_dict": {f"{name}.{k}": v for name, net in networks.items() for k, v in net.state_dict().items()},
    }
    torch.save(checkpoint | (extra or {}), path)
    return path


def imitator_with_statistics(image_size: int = 64, seed: int = 0) -> nn.Module:
    """A tiny untrained imitator whose batch-norm statistics and contrast are those training would leave.

    Without them the untrained net renders every vector as the same grey image, and nothing could be restored
    from its renders; with them pixels vary by ~0.2 between two parameter vectors.
    """
    from models.imitator import Imitator

    torch.manual_seed(seed)
    net = Imitator(image_size=image_size, channels=(16, 16, 8, 8, 8))
    for norm in (m for m in net.modules() if isinstance(m, nn.BatchNorm2d)):
        norm.momentum = None  # a cumulative average: one pass gives the batch's statistics
    with torch.no_grad():
        net.train()(torch.rand(256, NUM_PARAMETERS) * 5 - 2.5)
        net.layers[-2].weight.mul_(8)  # and contrast
    return net.eval()


def write_imitator_checkpoint(path: str | Path, image_size: int = 64, table: str | None = None) -> Path:
    """imitator_with_statistics() as a checkpoint; `table` records the parameter table version it was trained on."""
    extra = None if table is None else {"CrossDomainDataModule": {"parameter_table_version": table}}
    return write_network_checkpoint(path, extra, net=imitator_with_statistics(image_size))


class TinyExtractor(nn.Module):
    """A stand-in F_3d / F_id with batch norm (so 'stays in eval' means something): images -> (B, 16)."""

    def __init__(self):
        super().__init__()
        self.conv, self.norm = nn.Conv2d(3, 16, 4, stride=4), nn.BatchNorm2d(16)

    def forward(self, images):
        return F.adaptive_avg_pool2d(self.norm(self.conv(images)), 1).flatten(1)


def fake_render_batch(parameters: np.ndarray, size: int) -> np.ndarray:
    """fake_render over rows: uint8 (N, S, S, 3), the shape the engine's render_batch returns."""
    return np.stack([fake_render(row, size) for row in parameters])


def train_tiny_imitator(steps: int = 200, size: int = 64, seed: int = 0) -> nn.Module:
    """A tiny imitator trained with Adam on fake_render's screenshots of 256 vectors (a few seconds on one core)."""
    from models.imitator import Imitator

    torch.manual_seed(seed)
    net = Imitator(image_size=size, channels=(32, 32, 16, 16))
    parameters = fake_parameters(256, seed)
    images = torch.from_numpy(fake_render_batch(parameters, size)).permute(0, 3, 1, 2).float() / 255
    parameters = torch.from_numpy(parameters)
    optimizer = torch.optim.Adam(net.parameters(), lr=3e-3)
    net.train()
    for _ in range(steps):
        rows = torch.randint(0, len(parameters), (32,))
        loss = F.mse_loss(net(parameters[rows]), images[rows])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return net.eval()


# ----------------------------------------------------------------------------------------------- distributed


def free_port() -> int:
    """A TCP port on localhost that nothing listens on now (for a gloo process group's MASTER_PORT)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def small_fit_args(target_root: str | Path, runs: str | Path) -> list[str]:
    """LightningCLI flags shared by the tests that fit on a tiny screenshot set: its root, batch 8, no workers."""
    return [
        "--data.init_args.target_root",
        str(target_root),
        "--data.init_args.batch_size",
        "8",
        "--data.init_args.num_workers",
        "0",
        "--run.root",
        str(runs),
    ]
