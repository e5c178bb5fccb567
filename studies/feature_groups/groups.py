"""The feature-group ablation of the default model's reader (issue 13 item 2; not in the paper).

Each variant trains experiments/features/base.yaml with some of the frozen feature groups (models/face_features.py:
`mesh`, `identity`, `colour`) through the LightningCLI. The frozen features are kept on disk between fits
(experiments/features/cached.yaml: FOLDER.features.npz beside the training set). Every variant is scored on the likeness
benchmark (eval/likeness_bench.py, held-out recogniser, 256 px), whose photos' features are computed once: each
reader's frozen part is swapped for its columns of one shared extractor (the same values: the groups are computed
independently and concatenated in GROUPS order).
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch
from torch import nn

from eval.descriptors import ReaderDescriptor, load_parameter_model
from lightning_modules.run_folder import finished_checkpoint
from models.face_features import GROUP_WIDTHS, GROUPS, FaceFeatures

REPO = Path(__file__).resolve().parents[2]
VARIANTS: dict[str, tuple[str, ...]] = {
    "all": GROUPS,
    "mesh": ("mesh",),
    "identity": ("identity",),
    "colour": ("colour",),
    "no_mesh": ("identity", "colour"),
    "no_identity": ("mesh", "colour"),
    "no_colour": ("mesh", "identity"),
}


def fit_command(variant: str, seed: int, steps: int | None, runs: Path) -> list[str]:
    """The LightningCLI fit of one variant and seed (run name feature-groups-VARIANT-sSEED under `runs`)."""
    groups = "[" + ", ".join(VARIANTS[variant]) + "]"
    command = [
        sys.executable, "-m", "lightning_modules.cli", "fit",
        "--config", "experiments/features/base.yaml",
        "--config", "experiments/features/cached.yaml",
        "--model.init_args.net.init_args.features", groups,
        "--seed_everything", str(seed),
        "--run.name", f"feature-groups-{variant}-s{seed}",
        "--run.root", str(runs),
        "--run.wandb", "false",
    ]  # fmt: skip
    return command + (["--trainer.max_steps", str(steps)] if steps else [])


def train(variant: str, seed: int, steps: int | None, runs: Path, extra: list[str] = ()) -> Path:
    """The variant's last.ckpt, trained first unless a finished fit of it is in `runs`."""
    run = runs / f"feature-groups-{variant}-s{seed}"
    if finished_checkpoint(run) is None:
        subprocess.run([*fit_command(variant, seed, steps, runs), *extra], check=True, cwd=REPO)
    return finished_checkpoint(run)


class SharedFeatures(nn.Module):
    """All groups' frozen features, computed once per picture (memoised by its bytes) for every reader that asks."""

    def __init__(self) -> None:
        super().__init__()
        self.extractor = FaceFeatures(GROUPS)
        self.memo: dict[bytes, torch.Tensor] = {}

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        keys = [hashlib.blake2b(row.tobytes(), digest_size=16).digest() for row in images.float().cpu().numpy()]
        missing = [i for i, key in enumerate(keys) if key not in self.memo]
        if missing:
            for i, features in zip(missing, self.extractor(images[missing])):
                self.memo[keys[i]] = features
        return torch.stack([self.memo[key] for key in keys]).to(images.device)


class GroupSlice(nn.Module):
    """A reader's `extractor` stand-in: its groups' columns of the shared features, in GROUPS order."""

    def __init__(self, shared: SharedFeatures, groups: tuple[str, ...]) -> None:
        super().__init__()
        self.shared = [shared]  # a list: not a submodule, so .to()/.eval() of one reader leave it alone
        starts = np.cumsum([0, *GROUP_WIDTHS.values()])
        columns = [np.arange(starts[i], starts[i + 1]) for i, g in enumerate(GROUPS) if g in groups]
        self.register_buffer("columns", torch.from_numpy(np.concatenate(columns)), persistent=False)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.shared[0](images)[:, self.columns]


def sharing_readers(checkpoints: dict[str, Path]) -> dict[str, ReaderDescriptor]:
    """name -> the checkpoint's reader as a benchmark method, every one reading the same shared frozen features."""
    shared, methods = SharedFeatures(), {}
    for name, path in checkpoints.items():
        reader, size = load_parameter_model(path)
        reader.extractor = GroupSlice(shared, tuple(reader.features))
        methods[name] = ReaderDescriptor(name, reader, size)
    return methods
