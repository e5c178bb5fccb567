"""The character creator's 267 parameters: the table in `parameters.csv`, its version, and input validation."""

from __future__ import annotations

import csv
import hashlib
import io
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

TABLE_FILE = Path(__file__).with_name("parameters.csv")
BONES_FILE = Path(__file__).with_name("bones.csv")
NUM_PARAMETERS = 267
LOW, HIGH = -2.5, 2.5


@dataclass(frozen=True)
class Parameter:
    """One slider of the character creator."""

    index: int
    name: str
    group: str
    kind: str  # "shape" (moves a bone), "hair" (shapes hair, lashes, beard: game.hair) or "appearance" (colours)
    bone: str
    channel: str
    amount: float  # bone motion at |value| = 2.5: iod units, a scale fraction, or degrees
    meaning: str


@lru_cache(maxsize=1)
def table() -> tuple[Parameter, ...]:
    """All parameters in index order, checked for count, unique names and contiguous indices."""
    with open(TABLE_FILE, newline="") as f:
        rows = list(csv.DictReader(f))
    params = tuple(
        Parameter(
            int(r["index"]),
            r["name"],
            r["group"],
            r["kind"],
            r["bone"],
            r["channel"],
            float(r["amount"]) if r["amount"] else 0.0,
            r["meaning"],
        )
        for r in rows
    )
    if len(params) != NUM_PARAMETERS or [p.index for p in params] != list(range(NUM_PARAMETERS)):
        raise ValueError(f"{TABLE_FILE}: expected indices 0..{NUM_PARAMETERS - 1}, got {len(params)} rows")
    if len({p.name for p in params}) != NUM_PARAMETERS:
        raise ValueError(f"{TABLE_FILE}: parameter names must be unique")
    return params


def names() -> list[str]:
    return [p.name for p in table()]


def index_of(name: str) -> int:
    """Index of a parameter by name, with the close names in the error when it does not exist."""
    for p in table():
        if p.name == name:
            return p.index
    close = [n for n in names() if name.split("_")[0] in n][:8]
    raise KeyError(f"no parameter named {name!r}; similar: {close}")


def _table_version() -> str:
    digest = hashlib.sha256(TABLE_FILE.read_bytes() + BONES_FILE.read_bytes()).hexdigest()
    return f"v2-{digest[:12]}"  # v2: engine v2 replaced six sliders with hair, lashes and beard (docs/contracts.md)


TABLE_VERSION = _table_version()


def check_same_table(file: str | Path, version: str | None, other: str | Path, other_version: str | None) -> None:
    """Refuse to mix parameters of two parameter-table versions (an unrecorded one, None, is not checked).

    `file` recorded `version`; `other` (a file, a set, "this game") uses `other_version`.
    """
    if version and other_version and version != other_version:
        raise ValueError(
            f"{file} uses parameter table {version}, but {other} uses {other_version}: "
            f"the {NUM_PARAMETERS} parameters mean different things"
        )


def validate(params: np.ndarray, source: str = "parameters") -> np.ndarray:
    """Return params as float32 (N, 267) or raise ValueError naming `source`, the row and what is wrong."""
    array = np.asarray(params, dtype=np.float64)
    if array.ndim == 1:
        array = array[None]
    if array.ndim != 2 or array.shape[1] != NUM_PARAMETERS:
        raise ValueError(f"{source}: expected {NUM_PARAMETERS} parameters per row, got shape {np.shape(params)}")
    bad = ~np.isfinite(array)
    if bad.any():
        row, col = np.argwhere(bad)[0]
        raise ValueError(f"{source}: row {row}, parameter {col} ({names()[col]}) is not finite ({array[row, col]})")
    outside = (array < LOW - 1e-6) | (array > HIGH + 1e-6)
    if outside.any():
        row, col = np.argwhere(outside)[0]
        raise ValueError(
            f"{source}: row {row}, parameter {col} ({names()[col]}) = {array[row, col]:.4g} "
            f"is outside [{LOW}, {HIGH}] ({int(outside.sum())} values out of range)"
        )
    return array.astype(np.float32)


def read_named_file(path: Path, what: str, expected: str) -> bytes:
    """The bytes of a file a user named; FileNotFoundError or ValueError whose message starts with the path."""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: {what} not found") from None
    except IsADirectoryError:
        raise ValueError(f"{path}: a folder, expected {expected}") from None


def read_rows(path: str | Path) -> np.ndarray:
    """Parameter rows from a .npy array or a CSV file (267 numbers a line; a header line, blank lines and
    #-comments are skipped) as validated float32 (N, 267); an error names the file and, for CSV, the line."""
    path = Path(path)
    data = read_named_file(path, "parameter file", "a .npy or .csv file of parameter rows")
    if path.suffix.lower() == ".npy":
        try:
            array = np.load(io.BytesIO(data), allow_pickle=False)
        except (ValueError, OSError, EOFError) as error:
            raise ValueError(f"{path}: not a numpy .npy array ({error})") from None
        if not isinstance(array, np.ndarray) or array.dtype.kind not in "biuf":
            raise ValueError(f"{path}: expected an array of numbers, got dtype {getattr(array, 'dtype', None)}")
        if array.size == 0:
            raise ValueError(f"{path}: no parameter rows (shape {array.shape})")
        return validate(array, str(path))
    return _read_csv_rows(path, data)


def _read_csv_rows(path: Path, data: bytes) -> np.ndarray:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise ValueError(f"{path}: not UTF-8 text ({error}); expected a .csv of numbers or a .npy array") from None
    rows, lines = [], []
    try:
        for number, fields in enumerate(csv.reader(io.StringIO(text, newline="")), start=1):
            if not fields or not "".join(fields).strip() or fields[0].lstrip().startswith("#"):
                continue
            numeric = [_number(value) for value in fields]
            if not rows and not lines and all(value is None for value in numeric):
                lines.append(None)  # the header line, skipped
                continue
            if len(fields) != NUM_PARAMETERS:
                raise ValueError(f"{path} line {number}: {len(fields)} values, expected {NUM_PARAMETERS}")
            if None in numeric:
                column = numeric.index(None)
                raise ValueError(f"{path} line {number}: value {column} ({fields[column]!r}) is not a number")
            rows.append(numeric)
            lines.append(number)
    except csv.Error as error:
        raise ValueError(f"{path}: not a readable CSV file ({error})") from None
    if not rows:
        raise ValueError(f"{path}: no parameter rows (expected lines of {NUM_PARAMETERS} comma-separated numbers)")
    array = np.asarray(rows, np.float64)
    lines = [line for line in lines if line is not None]
    good = (np.isfinite(array) & (array >= LOW - 1e-6) & (array <= HIGH + 1e-6)).all(axis=1)
    if not good.all():
        row = int(np.argmin(good))
        validate(array[row], f"{path} line {lines[row]}")  # raises, naming the line and the parameter
    return array.astype(np.float32)


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def sample_uniform(rng: np.random.Generator, count: int) -> np.ndarray:
    """The paper's target prior: p ~ U[-2.5, 2.5]^267."""
    return rng.uniform(LOW, HIGH, size=(count, NUM_PARAMETERS)).astype(np.float32)


PRIORS = ("uniform", "realistic", "neutral_mix")


def sample_realistic(rng: np.random.Generator, count: int) -> np.ndarray:
    """A "realistic faces" prior for benchmarks, unlike the training prior: Gaussian, narrower (std ~0.9)
    and correlated within each group (3 shared factors per group, fixed loadings), clipped to the range."""
    groups = sorted({p.group for p in table()})
    group_of = np.array([groups.index(p.group) for p in table()])
    loadings = np.random.default_rng(2021).normal(0.0, 0.35, size=(NUM_PARAMETERS, 3))  # fixed: part of the prior
    own = rng.normal(0.0, 0.6, size=(count, NUM_PARAMETERS))
    shared = rng.normal(0.0, 1.0, size=(count, len(groups), 3))[:, group_of, :]  # (N, 267, 3)
    values = own + (shared * loadings[None]).sum(-1)
    return np.clip(values, LOW, HIGH).astype(np.float32)


def sample_prior(rng: np.random.Generator, count: int, prior: str = "uniform") -> np.ndarray:
    """Parameter vectors from a named prior (PRIORS)."""
    if prior == "uniform":
        return sample_uniform(rng, count)
    if prior == "realistic":
        return sample_realistic(rng, count)
    if prior == "neutral_mix":
        return sample_neutral_mix(rng, count)
    raise ValueError(f"unknown prior {prior!r}; choose one of {PRIORS}")


def sample_neutral_mix(rng: np.random.Generator, count: int) -> np.ndarray:
    """For an imitator: half the rows uniform, half with a random fraction of the sliders left at 0 (neutral).

    A regressor's answer for a slider the picture does not show is the prior's mean, 0; an imitator trained on
    the uniform prior alone never saw such vectors (its picture of the neutral face is ~10 dB worse than of a
    random one, bench/README.md) and the pixel loss through it then pays for that error.
    """
    values = sample_uniform(rng, count)
    # Drawn per row (datasets draw one row per generator): full rows with probability 1/2.
    keep_fraction = np.where(rng.uniform(size=count) < 0.5, 1.0, rng.uniform(0.0, 1.0, count))[:, None]
    return np.where(rng.uniform(size=values.shape) < keep_fraction, values, 0.0).astype(np.float32)


def describe() -> str:
    """The table as aligned text, grouped, for `python -m game describe`."""
    lines = [f"{NUM_PARAMETERS} parameters, each in [{LOW}, {HIGH}], 0 = neutral; table {TABLE_VERSION}"]
    group = None
    for p in table():
        if p.group != group:
            group = p.group
            lines.append(f"\n[{group}]")
        lines.append(f"{p.index:4d}  {p.name:30s} {p.kind:10s} {p.meaning}")
    return "\n".join(lines)
