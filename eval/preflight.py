"""What a command line checks about its paths before it loads a model or a benchmark, and how it stops on one.

Each check returns why a path cannot serve (one phrase naming the path), or None; `refuse` prints that as one
line, without a traceback, and exits non-zero.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path
from typing import NoReturn


def refuse(prog: str, message: str) -> NoReturn:
    """Stop command line `prog` with one line on stderr and exit status 2 (argparse's for bad arguments)."""
    print(f"{prog}: error: {message}", file=sys.stderr)
    raise SystemExit(2)


def file_problem(path: str | Path, what: str = "file") -> str | None:
    """Why `path` is not an existing file to read, or None."""
    path = Path(path)
    if path.is_dir():
        return f"{path} is a folder, not a {what}"
    if not path.is_file():
        return f"{path} not found"
    return None


def folder_problem(folder: str | Path) -> str | None:
    """Why files cannot be written into `folder` (made if missing), or None; probes with a temporary file."""
    folder = Path(folder)
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        return f"{existing} is a file, not a folder" if existing == folder else f"{existing} (above it) is a file"
    try:  # a real write: os.access says yes to root where procfs or a read-only mount still refuses one
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as error:
        return f"cannot write into {existing} ({error.strerror or error})"
    return None


def checkpoint_or_default(prog: str, ckpt: str | None) -> str:
    """`ckpt` as given, else the shipped default model's path (eval.descriptors.DEFAULT_MODEL); when that is not
    there, `refuse` with the one line saying how to make it."""
    if ckpt is not None:
        return ckpt
    from eval.descriptors import default_model

    try:
        return str(default_model())
    except FileNotFoundError as error:
        refuse(prog, str(error))
