"""Screenshot datasets on disk (docs/contracts.md section 4): deterministic, multi-process, resumable."""

from __future__ import annotations

import json
import logging
import multiprocessing
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from game import parameters as P
from game.engine import ENGINE_VERSION, STYLES, Game
from game.image_files import VERIFY, image_problem
from game.manifest import FORMAT_VERSION, KIND, read_manifest
from game.photo_extras import PhotoExtras

__all__ = ["FORMAT_VERSION", "KIND", "Manifest", "check_settings", "generate", "generate_once", "read_manifest"]
log = logging.getLogger(__name__)
IMAGE_FORMAT = {"game": "png", "photo": "jpg"}  # screenshots are lossless; photos are JPEGs anyway
JPEG_QUALITY = 95
PNG_COMPRESSION = 1  # fast; level 9 saves ~10% for ~5x the encode time


@dataclass(frozen=True)
class Manifest:
    """manifest.json of a screenshot dataset."""

    style: str
    size: int
    count: int
    seed: int
    image_format: str
    renders_per_identity: int = 1
    prior: str = "uniform"
    extras: dict = None  # photo style: PhotoExtras probabilities
    format_version: int = FORMAT_VERSION
    kind: str = KIND
    num_parameters: int = P.NUM_PARAMETERS
    parameter_range: tuple = (P.LOW, P.HIGH)
    parameter_table_version: str = P.TABLE_VERSION
    engine_version: int = ENGINE_VERSION
    complete: bool = False

    def settings(self) -> dict:
        """The fields that define the content (a resume must match them)."""
        d = asdict(self)
        d.pop("complete")
        d["parameter_range"] = list(d["parameter_range"])
        return d


def image_path(root: Path, index: int, image_format: str) -> Path:
    return Path(root) / "images" / f"{index:07d}.{image_format}"


def row_parameters(seed: int, identity: int, prior: str = "uniform") -> np.ndarray:
    """Parameters of one identity: depend only on (seed, identity), so any row can be re-made alone."""
    return P.sample_prior(np.random.default_rng([seed, identity]), 1, prior)[0]


def row_rng(seed: int, index: int) -> np.random.Generator:
    """The render randomness of one row (photo style)."""
    return np.random.default_rng([seed, index, 1])


def _write_json(path: Path, data: dict) -> None:
    partial = path.with_suffix(".json.part")
    partial.write_text(json.dumps(data, indent=2) + "\n")
    partial.replace(path)


def _encode(image: np.ndarray, image_format: str) -> bytes:
    bgr = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    if image_format == "png":
        ok, data = cv2.imencode(".png", bgr, [cv2.IMWRITE_PNG_COMPRESSION, PNG_COMPRESSION])
    else:
        ok, data = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:
        raise RuntimeError(f"could not encode a {image_format} image")
    return data.tobytes()


_worker_game: Game | None = None
_worker_error: Exception | None = None


def _init_worker(size: int, style: str, extras: dict | None = None) -> None:
    global _worker_game, _worker_error
    try:
        _worker_game = Game(size, style, extras=PhotoExtras(**(extras or {})))  # GL context comes on first render
    except Exception as error:  # a pool restarts a worker whose initializer raises, forever
        _worker_error = error


def _render_rows(job: tuple) -> int:
    if _worker_error is not None:
        raise _worker_error  # reaches the parent through the pool, which then stops
    root, seed, image_format, indices, params = job
    for index, row in zip(indices, params):
        rng = row_rng(seed, index) if _worker_game.style == "photo" else None
        data = _encode(_worker_game.render(row, rng), image_format)
        path = image_path(root, index, image_format)
        partial = path.with_name(path.name + ".part")
        partial.write_bytes(data)
        partial.replace(path)  # atomic: a file that exists is complete
    return len(indices)


def check_settings(
    count: int,
    size: int,
    style: str,
    renders_per_identity: int = 1,
    workers: int | None = None,
    prior: str = "uniform",
    extras: dict | None = None,
) -> None:
    """Raise ValueError naming the first setting of `generate` that cannot make a dataset (nothing is written)."""
    if style not in STYLES:
        raise ValueError(f"style must be one of {STYLES}, got {style!r}")
    checked = (("count", count), ("size", size), ("renders_per_identity", renders_per_identity), ("workers", workers))
    for name, value in checked:
        if value is None and name == "workers":
            continue
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    if prior not in P.PRIORS:
        raise ValueError(f"prior must be one of {P.PRIORS}, got {prior!r}")
    unknown = set(extras or {}) - set(asdict(PhotoExtras()))
    if unknown:
        raise ValueError(f"extras: unknown {sorted(unknown)}, expected some of {sorted(asdict(PhotoExtras()))}")
    Game(size, style, extras=PhotoExtras(**(extras or {})))  # checks size and extras; GL comes on first render


def generate(
    out: str | os.PathLike,
    count: int,
    size: int = 256,
    style: str = "game",
    seed: int = 0,
    renders_per_identity: int = 4,
    workers: int | None = None,
    chunk: int = 64,
    progress: bool = True,
    limit: int | None = None,
    prior: str = "uniform",
    extras: dict | None = None,
    verify: str = "header",
) -> Path:
    """Render `count` screenshots into `out`; re-running with the same arguments resumes an interrupted run, and on
    a complete set checks every image and re-renders the missing or damaged ones.

    Photo style: rows come in runs of `renders_per_identity` photos of one identity; `extras`
    ({expressions, glasses, occluders} probabilities) makes harder benchmark photos. `prior` names the
    parameter distribution (game.parameters.PRIORS). `verify` is how existing images are checked: "header"
    (signature, size and end marker; cheap) or "full" (decodes each). `limit` renders at most that many images
    and stops (used to test resuming). Every setting is checked before anything is written.
    """
    check_settings(count, size, style, renders_per_identity, workers, prior, extras)
    if verify not in VERIFY:
        raise ValueError(f"verify must be one of {VERIFY}, got {verify!r}")
    root = Path(out)
    if root.exists() and not root.is_dir():
        raise ValueError(f"{root}: exists and is not a folder")
    per_identity = renders_per_identity if style == "photo" else 1
    extras = {k: float(v) for k, v in asdict(PhotoExtras(**(extras or {}))).items()}
    if any(extras.values()) and style != "photo":
        raise ValueError("extras (expressions, glasses, occluders) need style='photo'")
    manifest = Manifest(
        style=style,
        size=size,
        count=count,
        seed=seed,
        image_format=IMAGE_FORMAT[style],
        renders_per_identity=per_identity,
        prior=prior,
        extras=extras,
    )
    manifest_path = root / "manifest.json"
    complete = False
    if manifest_path.exists():
        existing = read_manifest(root)
        theirs = {k: existing.get(k) for k in manifest.settings()}
        if theirs != manifest.settings():
            changed = {k: (theirs[k], v) for k, v in manifest.settings().items() if theirs[k] != v}
            raise ValueError(
                f"{manifest_path} was made with other settings {changed} (existing, requested); "
                f"choose another --out or repeat the original arguments to resume"
            )
        complete = existing.get("complete") is True
    todo = _rows_to_render(root, manifest, verify, progress)
    if complete and not todo and _arrays_present(root, manifest):
        return root

    (root / "images").mkdir(parents=True, exist_ok=True)
    _write_json(manifest_path, asdict(manifest))
    identities = np.arange(count) // per_identity
    params = np.stack([row_parameters(seed, int(i), prior) for i in range(identities[-1] + 1)])[identities]
    _save_array(root / "parameters.npy", params)
    if style == "photo":
        _save_array(root / "identities.npy", identities.astype(np.int64))

    left = todo[limit:] if limit is not None else []
    todo = todo[:limit] if limit is not None else todo
    jobs = [
        (root, seed, manifest.image_format, todo[i : i + chunk], params[todo[i : i + chunk]])
        for i in range(0, len(todo), chunk)
    ]
    workers = max(1, min(workers or os.cpu_count() or 1, len(jobs) or 1))
    bar = tqdm(total=len(todo), desc=f"render {style} {size}px", unit="img", disable=not progress)
    if workers == 1:
        _init_worker(size, style, extras)
        for job in jobs:
            bar.update(_render_rows(job))
    else:
        # spawn: a worker must never inherit a GL context made before a fork (it would hang).
        with multiprocessing.get_context("spawn").Pool(workers, _init_worker, (size, style, extras)) as pool:
            for done in pool.imap_unordered(_render_rows, jobs):
                bar.update(done)
    bar.close()
    if not left and all(image_path(root, i, manifest.image_format).exists() for i in range(count)):
        if style == "photo" and not _array_present(root / "points.npy", (count, 5, 2)):
            # Ground-truth face points per photo, for aligning it to the template like a real photo.
            game = Game(size, style, extras=PhotoExtras(**extras))
            points = np.stack([game.photo_points(params[i], row_rng(seed, i)) for i in range(count)])
            _save_array(root / "points.npy", points.astype(np.float32))
        _write_json(manifest_path, {**asdict(manifest), "complete": True})
    return root


def _rows_to_render(root: Path, manifest: Manifest, verify: str, progress: bool) -> list[int]:
    """Rows whose image is missing or damaged (checked by `verify`); each damaged one is logged."""
    todo, damaged = [], []
    rows = range(manifest.count)
    if (root / "images").is_dir():
        rows = tqdm(rows, desc=f"check images ({verify})", unit="img", disable=not progress, leave=False)
    for i in rows:
        path = image_path(root, i, manifest.image_format)
        problem = image_problem(path, manifest.size, verify) if path.exists() else "missing"
        if problem is not None:
            todo.append(i)
            if problem != "missing":
                damaged.append(f"{path}: {problem}")
    if damaged:
        log.warning("re-rendering %d damaged images; the first: %s", len(damaged), damaged[0])
    return todo


def _arrays_present(root: Path, manifest: Manifest) -> bool:
    """The arrays beside the images are there with their shapes (they are re-made from the seed otherwise)."""
    count = manifest.count
    arrays = {"parameters.npy": (count, P.NUM_PARAMETERS)}
    if manifest.style == "photo":
        arrays.update({"identities.npy": (count,), "points.npy": (count, 5, 2)})
    return all(_array_present(root / name, shape) for name, shape in arrays.items())


def _array_present(path: Path, shape: tuple) -> bool:
    try:
        return np.load(path, mmap_mode="r", allow_pickle=False).shape == shape
    except (OSError, ValueError, EOFError):
        return False


def generate_once(out: str | os.PathLike, count: int, **settings) -> Path:
    """`generate` on first use: returns `out` at once when its manifest says the set is complete (its settings are
    then not compared), else renders or resumes it."""
    if (Path(out) / "manifest.json").exists() and read_manifest(out).get("complete"):
        return Path(out)
    logging.getLogger(__name__).info("rendering %s %s images into %s", count, settings.get("style", "game"), out)
    return generate(out, count, **settings)


def _save_array(path: Path, array: np.ndarray) -> None:
    partial = path.with_name(path.name + ".part")
    with open(partial, "wb") as f:
        np.save(f, array)
    partial.replace(path)
