"""Character presets: one character's 267 sliders by name in a JSON file, with the parameter-table version.

The format (written by `write_preset`, read by `read_preset`; `python -m eval.reconstruct` writes it and
`python -m game render PRESET.json` renders it):

    {"parameter_table_version": "v1-...",
     "parameters": {"head_width": 0.0, ...every slider of game/parameters.csv, in table order...},
     ...notes: any other JSON fields (where the preset came from); readers ignore them}

Sliders are matched by name, so their order in the file does not matter; every slider must be there, once,
as a finite number in [-2.5, 2.5]. A preset recording another parameter-table version is refused (its sliders
mean other things); one that records none is read by its names.
"""

from __future__ import annotations

import difflib
import json
from pathlib import Path

import numpy as np

from game import parameters as P

RESERVED_FIELDS = ("parameter_table_version", "parameters")


def preset_dict(params: np.ndarray, **notes) -> dict:
    """The JSON object of one character: the table version, every slider by name in table order, then `notes`."""
    values = P.validate(params, "preset parameters")
    if len(values) != 1:
        raise ValueError(f"preset parameters: expected one character (267 values), got {len(values)} rows")
    clash = [name for name in RESERVED_FIELDS if name in notes]
    if clash:
        raise ValueError(f"preset notes: {clash[0]!r} is a field of the preset itself, not a note")
    return {
        "parameter_table_version": P.TABLE_VERSION,
        "parameters": {name: float(v) for name, v in zip(P.names(), values[0])},
        **notes,
    }


def write_preset(path: str | Path, params: np.ndarray, **notes) -> Path:
    """Write one character's preset JSON (see the module docstring) to `path`; notes are extra JSON fields."""
    path = Path(path)
    text = json.dumps(preset_dict(params, **notes), indent=1, allow_nan=False) + "\n"
    path.write_text(text)
    return path


def read_preset(path: str | Path) -> np.ndarray:
    """The (267,) float32 sliders of a preset JSON; ValueError (FileNotFoundError) naming the file and the problem."""
    path = Path(path)
    data = P.read_named_file(path, "preset file", "a preset .json file")
    try:
        preset = json.loads(data.decode("utf-8-sig"), object_pairs_hook=_refuse_repeated_keys)
    except UnicodeDecodeError as error:
        raise ValueError(f"{path}: not a JSON preset (not UTF-8 text: {error})") from None
    except _RepeatedKey as error:
        raise ValueError(f"{path}: {error} (each field and slider must appear once)") from None
    except ValueError as error:  # JSONDecodeError, or an integer too long for Python to read
        raise ValueError(f"{path}: not a JSON preset ({error})") from None
    except RecursionError:
        raise ValueError(f"{path}: not a JSON preset (nested too deeply)") from None
    if not isinstance(preset, dict):
        raise ValueError(f"{path}: expected a JSON object with a 'parameters' object, got {_kind(preset)}")
    version = preset.get("parameter_table_version")
    if version is not None and not isinstance(version, str):
        raise ValueError(f"{path}: parameter_table_version must be a string, got {_kind(version)}")
    P.check_same_table(path, version, "this game", P.TABLE_VERSION)
    sliders = preset.get("parameters")
    if not isinstance(sliders, dict):
        raise ValueError(
            f"{path}: expected a 'parameters' object of slider names and values, got {_kind(sliders)}"
            if "parameters" in preset
            else f"{path}: no 'parameters' object (slider names and values)"
        )
    return _slider_values(path, sliders)


def _slider_values(path: Path, sliders: dict) -> np.ndarray:
    names = P.names()
    known = set(names)
    unknown = [name for name in sliders if name not in known]
    if unknown:
        close = difflib.get_close_matches(unknown[0], names, n=3)
        raise ValueError(
            f"{path}: {len(unknown)} unknown slider name{'s' if len(unknown) > 1 else ''}, first {unknown[0]!r}"
            + (f" (similar: {', '.join(close)})" if close else "")
        )
    missing = [name for name in names if name not in sliders]
    if missing:
        shown = ", ".join(missing[:3]) + (", ..." if len(missing) > 3 else "")
        raise ValueError(f"{path}: {len(missing)} of the {P.NUM_PARAMETERS} sliders missing ({shown})")
    values = np.empty(P.NUM_PARAMETERS, np.float64)
    for i, name in enumerate(names):
        value = sliders[name]
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"{path}: slider {name!r} is {json.dumps(value)[:40]}, not a number")
        try:
            value = float(value)
        except OverflowError:  # an integer beyond any float
            raise ValueError(f"{path}: slider {name!r} = {str(value)[:8]}... is outside [{P.LOW}, {P.HIGH}]") from None
        if not np.isfinite(value):
            raise ValueError(f"{path}: slider {name!r} is {value}, not a finite number")
        if not P.LOW - 1e-6 <= value <= P.HIGH + 1e-6:
            raise ValueError(f"{path}: slider {name!r} = {value:.4g} is outside [{P.LOW}, {P.HIGH}]")
        values[i] = value
    return values.astype(np.float32)


class _RepeatedKey(ValueError):
    pass


def _refuse_repeated_keys(pairs: list) -> dict:
    seen = {}
    for key, value in pairs:
        if key in seen:
            raise _RepeatedKey(f"{key!r} appears twice")
        seen[key] = value
    return seen


def _kind(value) -> str:
    """A JSON value's type in JSON's words, for error messages."""
    if value is None:
        return "null"
    return {bool: "a boolean", int: "a number", float: "a number", str: "a string", list: "a list", dict: "an object"}[
        type(value)
    ]
