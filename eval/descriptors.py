"""Face descriptors for verification: regressed game parameters (our model) and the face-ID embedding (upper bound).

A descriptor has a `name`, an `is_parameters` flag and maps template-aligned images (B, 3, S, S) in [0, 1] to
(B, D) vectors; the baselines of eval/baselines are descriptors too. Also the checkpoint loading they need:
`load_parameter_model` reads any file that regresses parameters (a regression checkpoint, a reader checkpoint, or an
exported reader such as the shipped default model, DEFAULT_MODEL) for eval/verify.py, eval/reconstruct.py and bench/.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch

from models.resize import resize_to

log = logging.getLogger(__name__)

# The shipped default model (not in the paper: the mean of a frozen-real-face-feature reader and a pixel reader),
# made by `make pretrained` (studies/pretrained); the photo tool and verify use it when no --ckpt is given.
DEFAULT_MODEL = Path(__file__).resolve().parents[1] / "weights" / "default" / "model.pt"


class ReaderDescriptor:
    """Regressed game parameters of a reader (models/readers.py: images -> ReaderOutput), run at the size it was
    trained at (others are resized to it): images (B, 3, S, S) in [0, 1] -> (B, 267)."""

    is_parameters = True

    def __init__(self, name: str, reader: torch.nn.Module, image_size: int | None, device: str = "cpu"):
        self.name, self.device, self.image_size = name, device, image_size
        self.reader = reader.to(device).eval()

    @torch.inference_mode()
    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        output = self.reader(resize_to(images.to(self.device), self.image_size))
        return output if isinstance(output, torch.Tensor) else output.parameters


class ParameterDescriptor(ReaderDescriptor):
    """Regressed game parameters p = R(E(x).features).parameters: images (B, 3, S, S) in [0, 1] -> (B, 267)."""

    def __init__(self, name: str, encoder: torch.nn.Module, regressor: torch.nn.Module, device: str = "cpu"):
        from models.readers import EncoderRegressorReader

        super().__init__(name, EncoderRegressorReader(encoder, regressor), getattr(encoder, "image_size", None), device)
        self.encoder, self.regressor = self.reader.encoder, self.reader.regressor


def default_model() -> Path:
    """The shipped default model's file; FileNotFoundError (one line: run `make pretrained`) when it is not there."""
    if not DEFAULT_MODEL.is_file():
        raise FileNotFoundError(
            f"no default model: {DEFAULT_MODEL} is not there; run `make pretrained` to train and export it "
            "(or give --ckpt PATH)"
        )
    return DEFAULT_MODEL


def load_parameter_model(path: str | Path) -> tuple[torch.nn.Module, int | None]:
    """(reader, the image size it reads) from any file that regresses parameters, told apart by the keys it holds:
    a network spec under hyper_parameters["net"] naming a reader (a ParameterReaderModule checkpoint, or an export
    of models.checkpoints.export_network such as weights/default/model.pt), else encoder + regressor (a regression
    checkpoint, wrapped as models.readers.EncoderRegressorReader). A file recording another parameter table than
    this game's is refused, naming it: its 267 outputs mean other sliders."""
    from game import parameters as P
    from models.checkpoints import CheckpointError, load_network, read_checkpoint
    from models.readers import EncoderRegressorReader, without_feature_caches

    checkpoint = read_checkpoint(path, mmap=True)
    # The DataModule's state (docs/contracts.md section 6) sits under its class name, an export's under "export".
    entries = [value for value in checkpoint.values() if isinstance(value, dict)]
    recorded = {value.get("parameter_table_version") for value in entries} - {None}
    P.check_same_table(path, ", ".join(sorted(recorded)), "this game", P.TABLE_VERSION)
    hyper_parameters = checkpoint.get("hyper_parameters") or {}
    spec = hyper_parameters.get("net") if isinstance(hyper_parameters, dict) else None
    if isinstance(spec, dict) and "class_path" in spec:
        if not str(spec["class_path"]).startswith("models.readers."):
            raise CheckpointError(
                f"{path}: holds a {spec['class_path']} under 'net', not a parameter reader (expected a regression "
                "or reader checkpoint, or an export such as weights/default/model.pt)"
            )
        reader = without_feature_caches(load_network(path, "net"))
        sizes = {value.get("image_size") for value in entries} - {None}
        return reader, (sizes.pop() if len(sizes) == 1 else None)
    encoder, regressor = load_regression(path)
    return EncoderRegressorReader(encoder, regressor).eval(), getattr(encoder, "image_size", None)


class FaceIdDescriptor:
    """The face-ID embedding F_id itself (the paper's LightCNN row, an upper bound): (B, 3, S, S) -> (B, D)."""

    is_parameters = False

    def __init__(self, name: str, extractor: torch.nn.Module, device: str = "cpu"):
        self.name, self.device, self.extractor = name, device, extractor.to(device).eval()

    @torch.inference_mode()
    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        return self.extractor(images.to(self.device))


def load_regression(path: str | Path) -> tuple[torch.nn.Module, torch.nn.Module]:
    """(encoder, regressor) of a regression checkpoint; the one place to adapt if its format changes."""
    from models.checkpoints import load_network

    try:
        return load_network(path, "encoder"), load_network(path, "regressor")
    except KeyError:  # no network specs under those keys: rebuild the whole LightningModule instead
        from lightning_modules.regression import RegressionModule

        module = RegressionModule.load_from_checkpoint(path, map_location="cpu")
        return module.encoder.eval(), module.regressor.eval()


def load_imitator(path: str | None, checkpoints: list[str]) -> tuple[torch.nn.Module | None, str]:
    """The imitator for the imitator-vs-engine gap: `path`, else the one the first regression checkpoint that
    names one was trained through. (network, where it came from), or (None, why there is none)."""
    from models.checkpoints import find_checkpoint, load_network, read_checkpoint

    if path:
        return load_network(find_checkpoint(path), "net"), f"{path} (--imitator)"
    missing = []
    for spec in checkpoints:
        checkpoint = spec.split("=", 1)[-1]
        saved = read_checkpoint(checkpoint, mmap=True)
        named = (saved.get("frozen_sources") or {}).get("imitator") or saved.get("hyper_parameters", {}).get(
            "imitator_checkpoint"
        )
        if named:
            try:
                file = find_checkpoint(named)
            except FileNotFoundError:
                missing.append(f"{checkpoint} names {named}, which is not here")
                continue
            return load_network(file, "net"), f"{file} (the imitator {checkpoint} was trained through)"
    return None, "; ".join(missing) or "no --imitator, and no --ckpt names the imitator it was trained through"


def build_descriptors(
    checkpoints: list[str], face_id: str | None, face_id_checkpoint: str | None, device: str
) -> tuple[list, dict[str, str]]:
    """Descriptor rows: "NAME=PATH" (or PATH, named "ours" first) checkpoints (any file load_parameter_model reads),
    then the face-ID row if it loads."""
    rows, skipped = [], {}
    for number, spec in enumerate(checkpoints):
        name, path = spec.split("=", 1) if "=" in spec else ("ours" if number == 0 else Path(spec).stem, spec)
        if name in (row.name for row in rows):
            raise ValueError(f"two checkpoints are named {name!r}; name them with --ckpt NAME=PATH")
        if not Path(path).is_file():
            raise FileNotFoundError(f"checkpoint {path} not found (--ckpt {spec})")
        rows.append(ReaderDescriptor(name, *load_parameter_model(path), device=device))
    if face_id:
        try:
            from models.face_id import build_face_id

            rows.append(FaceIdDescriptor("face_id", build_face_id(face_id, face_id_checkpoint), device))
        except Exception as error:  # the upper-bound row is optional: report why it is missing
            skipped["face_id"] = f"{type(error).__name__}: {error}"
            log.warning("face_id row skipped: %s", skipped["face_id"])
    return rows, skipped


def build_baselines(
    specs: list[str], face_id: str, face_id_checkpoint: str | None, device: str, f2p_steps: int = 400
) -> list:
    """Baseline rows from "KIND=PATH" specs, named by kind: fastf2p=TRANSLATOR.ckpt, f2p=IMITATOR.ckpt."""
    from eval.baselines import build_baseline

    rows = []
    for spec in specs:
        kind, equals, path = spec.partition("=")
        if not equals or not path:
            raise ValueError(f"--baseline {spec!r}: expected KIND=PATH, e.g. fastf2p=runs/demo/fastf2p.ckpt")
        if kind in (row.name for row in rows):
            raise ValueError(f"--baseline {spec!r}: a {kind} row is already there")
        if not Path(path).exists():
            raise FileNotFoundError(f"baseline checkpoint {path} not found (--baseline {spec})")
        options = {"steps": f2p_steps} if kind == "f2p" else {}
        rows.append(build_baseline(kind, path, face_id, face_id_checkpoint, device, **options))
    return rows
