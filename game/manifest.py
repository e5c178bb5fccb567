"""manifest.json of a screenshot dataset (docs/contracts.md section 4): read and type-checked, every error naming it.

Light on purpose (json only): readers of a set must not need the renderer's imports.
"""

from __future__ import annotations

import json
from pathlib import Path

FORMAT_VERSION = 1
KIND = "likeness.screenshots"
IMAGE_FORMATS = ("png", "jpg")


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


# field -> (what it must be, test); a field that is present must pass, `REQUIRED` ones must be present.
FIELDS = {
    "format_version": (f"{FORMAT_VERSION}", lambda v: _is_int(v) and v == FORMAT_VERSION),
    "kind": (repr(KIND), lambda v: v == KIND),
    "count": ("a positive integer", lambda v: _is_int(v) and v >= 1),
    "size": ("a positive integer", lambda v: _is_int(v) and v >= 1),
    "seed": ("an integer", _is_int),
    "style": ("a string", lambda v: isinstance(v, str)),
    "image_format": (f"one of {IMAGE_FORMATS}", lambda v: v in IMAGE_FORMATS),
    "renders_per_identity": ("a positive integer", lambda v: _is_int(v) and v >= 1),
    "prior": ("a string", lambda v: isinstance(v, str)),
    "extras": (
        "an object of numbers or null",
        lambda v: v is None or (isinstance(v, dict) and all(map(_is_number, v.values()))),
    ),
    "num_parameters": ("an integer", _is_int),
    "parameter_range": (
        "a list of two numbers",
        lambda v: isinstance(v, list) and len(v) == 2 and all(map(_is_number, v)),
    ),
    "parameter_table_version": ("a string", lambda v: isinstance(v, str)),
    "engine_version": ("an integer", _is_int),
    "complete": ("true or false", lambda v: isinstance(v, bool)),
}
REQUIRED = ("format_version", "kind", "count")


def read_manifest(root: str | Path) -> dict:
    """ROOT/manifest.json as a dict whose known fields have their documented types, else an error naming the file."""
    path = Path(root) / "manifest.json"
    try:
        manifest = json.loads(path.read_bytes().decode("utf-8"))
    except FileNotFoundError:
        raise FileNotFoundError(
            f"{path} not found: not a likeness screenshot dataset (make one with `python -m game generate`)"
        ) from None
    except IsADirectoryError:
        raise ValueError(f"{path}: a folder, expected a JSON file") from None
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as error:
        raise ValueError(f"{path}: not valid JSON ({error})") from None
    if not isinstance(manifest, dict):
        raise ValueError(f"{path}: expected a JSON object, got {type(manifest).__name__}")
    for key in REQUIRED:
        if key not in manifest:
            raise ValueError(f"{path}: no {key!r} field: not a likeness screenshot dataset manifest")
    for key, (expected, test) in FIELDS.items():
        if key in manifest and not test(manifest[key]):
            raise ValueError(f"{path}: {key} is {manifest[key]!r}, expected {expected}")
    return manifest
