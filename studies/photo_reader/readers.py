"""The photo-reader study's variants (issue 13's RMSE goals; not in the paper).

Each variant is a reader trained through the LightningCLI on photo-style renders with their known parameters
(experiments/features/base.yaml's data and loss) and scored on the likeness benchmark. The shipped default model
reads dlib's face descriptor and wins likeness, but its visible sliders are no closer than the neutral face's;
these variants read the aligned picture itself (timm's ResNet-18 from scratch, experiments/features/pixels.yaml),
with and without the nuisances of real photos in the training set (experiments/features/extras.yaml).
"""

from __future__ import annotations

from pathlib import Path

from eval.descriptors import ReaderDescriptor, load_parameter_model
from lightning_modules import run_folder
from models.readers import MeanOfReaders

REPO = Path(__file__).resolve().parents[2]
BASE = "experiments/features/base.yaml"
VARIANTS: dict[str, tuple[str, ...]] = {
    "pixels": ("experiments/features/pixels.yaml",),
    "pixels-extras": ("experiments/features/pixels.yaml", "experiments/features/extras.yaml"),
    "pixels-extras-100k": ("experiments/features/pixels.yaml", "experiments/features/extras_100k.yaml"),
    # the same with ResNet-10-T, small enough to ship (weights/ <= 20 MB)
    "resnet10t-extras-100k": (
        "experiments/features/pixels.yaml",
        "experiments/features/extras_100k.yaml",
        "experiments/features/resnet10t.yaml",
    ),
    # a diagnostic: the benchmark's prior family (realistic.yaml), not a reader to ship
    "pixels-extras-realistic": ("experiments/features/pixels.yaml", "experiments/features/realistic.yaml"),
}


def run_name(variant: str, seed: int) -> str:
    return f"features-{variant}-s{seed}"


def fit_command(variant: str, seed: int, runs: Path) -> list[str]:
    """The LightningCLI fit of one variant: base.yaml, then its overlays, as run features-VARIANT-sSEED."""
    return [
        *run_folder.fit_command([BASE, *VARIANTS[variant]], run_name(variant, seed), runs),
        "--seed_everything",
        str(seed),
    ]


def train(variant: str, seed: int, runs: Path, extra: list[str] = ()) -> Path:
    """The variant's last.ckpt, trained first unless a finished fit of it is in `runs`."""
    return run_folder.fit_once([*fit_command(variant, seed, runs), *extra], runs / run_name(variant, seed))


def readers(
    checkpoints: dict[str, Path], means: dict[str, tuple[str, ...]] | None = None
) -> dict[str, ReaderDescriptor]:
    """name -> the checkpoint's reader (a training checkpoint or an export) as a benchmark method, and for each
    entry of `means` (name -> names of checkpoints) the mean of those readers (models.readers.MeanOfReaders)."""
    loaded = {name: load_parameter_model(path) for name, path in checkpoints.items()}
    methods = {name: ReaderDescriptor(name, reader, size) for name, (reader, size) in loaded.items()}
    for name, members in (means or {}).items():
        ensemble = MeanOfReaders([loaded[m][0] for m in members], [loaded[m][1] for m in members])
        methods[name] = ReaderDescriptor(name, ensemble, None)
    return methods
