"""The feature-group ablation of the default model's reader (issue 13 item 2; not in the paper).

Each variant trains experiments/features/base.yaml with some of the frozen feature groups (models/face_features.py:
`mesh`, `identity`, `colour`) through the LightningCLI. The frozen features are kept on disk between fits
(experiments/features/cached.yaml: FOLDER.features.npz beside the training set). Every variant is scored on the
likeness benchmark (eval/likeness_bench.py, held-out recogniser, 256 px), whose photos' features are computed once:
each reader's frozen part is swapped for its columns of one shared reader's cached features (the same values: the
groups are computed independently and concatenated in GROUPS order).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from eval.descriptors import ReaderDescriptor, load_parameter_model
from lightning_modules import run_folder
from models.face_features import GROUPS, group_columns
from models.readers import FaceFeatureReader

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


def run_name(variant: str, seed: int) -> str:
    return f"feature-groups-{variant}-s{seed}"


def fit_command(variant: str, seed: int, steps: int | None, runs: Path) -> list[str]:
    """The LightningCLI fit of one variant and seed (run name feature-groups-VARIANT-sSEED under `runs`)."""
    groups = "[" + ", ".join(VARIANTS[variant]) + "]"
    configs = ["experiments/features/base.yaml", "experiments/features/cached.yaml"]
    command = run_folder.fit_command(configs, run_name(variant, seed), runs)
    command += ["--model.init_args.net.init_args.features", groups, "--seed_everything", str(seed)]
    return command + (["--trainer.max_steps", str(steps)] if steps else [])


def train(variant: str, seed: int, steps: int | None, runs: Path, extra: list[str] = ()) -> Path:
    """The variant's last.ckpt, trained first unless a finished fit of it is in `runs`."""
    return run_folder.fit_once([*fit_command(variant, seed, steps, runs), *extra], runs / run_name(variant, seed))


def shared_features() -> FaceFeatureReader:
    """A reader of every group whose frozen-feature cache (memoised by picture bytes) serves all the variants."""
    return FaceFeatureReader(GROUPS, hidden=1)


class GroupSlice(nn.Module):
    """A reader's `extractor` stand-in: its groups' columns of the shared reader's frozen features."""

    def __init__(self, shared: FaceFeatureReader, groups: tuple[str, ...]) -> None:
        super().__init__()
        self.shared = [shared]  # a list: not a submodule, so .to()/.eval() of one reader leave it alone
        every = group_columns(GROUPS)
        columns = [torch.arange(every[g].start, every[g].stop) for g in GROUPS if g in groups]
        self.register_buffer("columns", torch.cat(columns), persistent=False)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.shared[0].frozen_features(images).to(images.device)[:, self.columns]


def sharing_readers(checkpoints: dict[str, Path]) -> dict[str, ReaderDescriptor]:
    """name -> the checkpoint's reader as a benchmark method, every one reading the same shared frozen features."""
    shared, methods = shared_features(), {}
    for name, path in checkpoints.items():
        reader, size = load_parameter_model(path)
        reader.extractor = GroupSlice(shared, tuple(reader.features))
        methods[name] = ReaderDescriptor(name, reader, size)
    return methods
