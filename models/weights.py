"""The weight and asset cache: one folder outside git, filled from package registries by `make setup`.

Nothing here runs at training or inference time except `require`, which only looks on disk.
`python -m models fetch` downloads and unpacks; `python -m models where` prints the folder.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

MEDIAPIPE_VERSION = "0.10.21"
MEDIAPIPE_DIR = f"mediapipe-{MEDIAPIPE_VERSION}"
# Members of the mediapipe wheel we keep (Apache-2.0); this version pins numpy<2, so it is never installed.
MEDIAPIPE_MEMBERS = {
    "mediapipe/modules/face_landmark/face_landmark.tflite": "face_landmark.tflite",
    "mediapipe/modules/face_detection/face_detection_short_range.tflite": "face_detection_short_range.tflite",
    "mediapipe/python/solutions/face_mesh_connections.py": "face_mesh_connections.py",
}

FACE_API_VERSION = "1.7.15"
FACE_API_PACKAGE = f"@vladmandic/face-api@{FACE_API_VERSION}"
FACE_API_DIR = f"face-api-{FACE_API_VERSION}"
# Members of the npm tarball we keep (MIT): dlib's face descriptor as 8-bit TFJS weights, and the ESM bundle
# (tfjs 4.22 inside) that tests/reference/ runs as the reference runtime.
FACE_API_MEMBERS = {
    "package/model/face_recognition_model-weights_manifest.json": "face_recognition_model-weights_manifest.json",
    "package/model/face_recognition_model.bin": "face_recognition_model.bin",
    "package/dist/face-api.esm.js": "face-api.esm.js",
    "package/LICENSE": "LICENSE",
}


def cache_dir() -> Path:
    """The cache folder: $LIKENESS_CACHE, else ${XDG_CACHE_HOME:-~/.cache}/likeness."""
    if os.environ.get("LIKENESS_CACHE"):
        return Path(os.environ["LIKENESS_CACHE"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "likeness"


def require(relative: str, made_by: str = "make setup") -> Path:
    """Path of a cached file, or a FileNotFoundError naming it and the command that creates it."""
    path = cache_dir() / relative
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} is missing from the likeness cache ($LIKENESS_CACHE={cache_dir()}). "
            f"Create it with `{made_by}` (needs the PyPI registry once; everything after is offline)."
        )
    return path


def read_state_dict(path: str | os.PathLike, key: str | None, needs: str, hint: str = "") -> dict:
    """The tensors under `key` of a user-supplied torch checkpoint (key None: under 'state_dict' if there is
    one, else the whole dict), `module.` prefixes (DataParallel) removed. Every error names the file and
    `needs`, the layout expected."""
    import torch  # here: fetching weights must not need torch

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file; {needs}")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        raise ValueError(
            f"{path}: not readable as a torch checkpoint with weights_only=True ({error}); expected {needs}{hint}"
        ) from error
    state = None
    if isinstance(checkpoint, dict):
        state = checkpoint.get(key) if key is not None else checkpoint.get("state_dict", checkpoint)
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        found = sorted(checkpoint)[:8] if isinstance(checkpoint, dict) else type(checkpoint).__name__
        raise ValueError(f"{path}: expected {needs}; found {found}")
    return {name.removeprefix("module."): value for name, value in state.items()}


def layout_mismatch(got: dict, expected: dict, prefix: str = "") -> str:
    """'Missing: ...; unexpected: ...; wrong shape: ...' between two {key: shape} layouts (first five of each)."""
    missing = [f"{prefix}{k} {expected[k]}" for k in expected if k not in got]
    unexpected = [f"{k} {got[k]}" for k in got if k not in expected]
    wrong = [f"{prefix}{k}: {got[k]}, expected {expected[k]}" for k in expected if k in got and got[k] != expected[k]]
    return f"Missing: {missing[:5]}; unexpected: {unexpected[:5]}; wrong shape: {wrong[:5]}"


def mediapipe_asset(name: str) -> Path:
    """A file unpacked from the mediapipe wheel, e.g. 'face_landmark.tflite'."""
    return require(f"{MEDIAPIPE_DIR}/{name}", made_by="python -m models fetch")


def fetch_mediapipe(force: bool = False) -> Path:
    """Download the mediapipe wheel with `pip download --no-deps` and unpack the few files we use."""
    target = cache_dir() / MEDIAPIPE_DIR
    if not force and all((target / name).is_file() for name in MEDIAPIPE_MEMBERS.values()):
        return target
    target.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--quiet",
            "--only-binary",
            ":all:",
            "--python-version",
            "3.11",
            "--platform",
            "manylinux_2_28_x86_64",
            f"mediapipe=={MEDIAPIPE_VERSION}",
            "-d",
            tmp,
        ]
        subprocess.run(cmd, check=True)
        wheel = next(Path(tmp).glob("mediapipe-*.whl"))
        with zipfile.ZipFile(wheel) as archive:
            for member, name in MEDIAPIPE_MEMBERS.items():
                partial = target / (name + ".part")
                with archive.open(member) as src, open(partial, "wb") as dst:
                    shutil.copyfileobj(src, dst)
                partial.replace(target / name)
    return target


def face_api_asset(name: str) -> Path:
    """A file unpacked from the @vladmandic/face-api npm package, e.g. 'face_recognition_model.bin'."""
    return require(f"{FACE_API_DIR}/{name}", made_by="python -m models fetch")


def fetch_face_api(force: bool = False) -> Path:
    """Download @vladmandic/face-api with `npm pack` and unpack the few files we use into one folder, atomically."""
    target = cache_dir() / FACE_API_DIR
    if not force and all((target / name).is_file() for name in FACE_API_MEMBERS.values()):
        return target
    npm = shutil.which("npm")
    if npm is None:
        raise RuntimeError(
            f"`npm` is not on PATH, so `npm pack {FACE_API_PACKAGE}` cannot fetch {target}. "
            "Install Node.js 18+ with npm, then run `python -m models fetch`."
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    # Unpack beside the target, so the final rename stays on one filesystem and is atomic.
    with tempfile.TemporaryDirectory() as tmp, tempfile.TemporaryDirectory(dir=target.parent) as staging:
        subprocess.run([npm, "pack", FACE_API_PACKAGE, "--silent"], cwd=tmp, check=True, stdout=subprocess.DEVNULL)
        unpacked = Path(staging) / FACE_API_DIR
        unpacked.mkdir()
        with tarfile.open(next(Path(tmp).glob("*.tgz"))) as archive:
            for member, name in FACE_API_MEMBERS.items():
                with archive.extractfile(member) as src, open(unpacked / name, "wb") as dst:
                    shutil.copyfileobj(src, dst)
        if target.exists():  # --force, or an incomplete folder: replace it whole
            shutil.rmtree(target)
        try:
            unpacked.replace(target)
        except OSError:  # another process finished the same fetch first
            if not all((target / name).is_file() for name in FACE_API_MEMBERS.values()):
                raise
    return target
