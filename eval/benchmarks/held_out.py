"""The held-out likeness benchmark: synthetic photo-style photos of people no training set can hold, in LFW View 2's
shape (10 folds of pairs, each fold's people its own), and a lineup per person for the lineup test.

Rendered once by `game.dataset.generate` into a folder under data/ and reused (a rerun checks the files and
renders only what is missing); the pairs and lineups are drawn from the seed, so two builds are identical.

Seeds. A set's identity i gets its parameters from `np.random.default_rng([seed, i])` and photo i its pose, light,
background and extras from `default_rng([seed, i, 1])` (and a child of it): the dataset seed is the first word of
every stream. Every data seed in the repository is a small integer (training sets 0 and 1, the demo benchmark 2,
seed_everything 1234, bench/imitator's 20211020): all below HELD_OUT_SEEDS' start 10**9. The benchmark's seed lies
in [10**9, 2**32): one 32-bit word (a larger seed splits into two words and can reproduce a small seed's stream),
so none of its streams can equal a stream of any seed below 10**9. tests/test_likeness_bench.py reads the configs,
studies and defaults and asserts it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from itertools import combinations
from pathlib import Path

import numpy as np

from eval.benchmarks.base import FIXED_PLACEMENT, NUM_FOLDS, Benchmark

HELD_OUT_SEEDS = range(10**9, 2**32)  # reserved for held-out benchmarks; every training seed lies below
SEED = 10**9 + 13  # issue 13
# As the demo's benchmark (studies/demo/stages.py, BENCH_EXTRAS): correlated realistic faces, and photos that show
# an expression, glasses or an occluder over part of the face.
PRIOR = "realistic"
EXTRAS = {"expressions": 0.5, "glasses": 0.3, "occluders": 0.2}
ROOT = "data/benchmarks/likeness-256"


@dataclass
class LikenessBenchmark:
    """Verification pairs over the photos, and for one photo per person a lineup of photo indices."""

    bench: Benchmark  # pairs, folds, ground-truth parameters, identities
    lineups: np.ndarray  # (L, lineup_size) photo indices: column 0 the photo itself, then one photo of each other
    settings: dict = field(default_factory=dict)  # how it was built, for the report

    def summary(self) -> dict:
        """Sizes, seed and render time, for the report."""
        return self.settings | self.bench.summary() | {"lineup_photos": len(self.lineups)}


def view2_pairs(
    identities: np.ndarray, pairs_per_fold: int, seed: int, folds: int = NUM_FOLDS
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """LFW View 2's shape over photos of known people: (pairs (P, 2), is_same (P,), fold (P,)).

    The people are dealt into `folds` folds of equal size (seeded), so no person is in two folds; each fold gets
    pairs_per_fold / 2 same pairs (two photos of one of its people, drawn without repeats) and as many different
    pairs (photos of two of its people, distinct pairs). Same pairs first within each fold.
    """
    identities = np.asarray(identities)
    if pairs_per_fold < 2 or pairs_per_fold % 2:
        raise ValueError(f"pairs_per_fold must be even and at least 2, got {pairs_per_fold}")
    people = np.unique(identities)
    if len(people) < 2 * folds:
        raise ValueError(f"need at least {2 * folds} people for {folds} folds, got {len(people)}")
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(1,)))  # not a row stream of the set
    half = pairs_per_fold // 2
    dealt = np.array_split(rng.permutation(people), folds)
    out_pairs, out_same, out_fold = [], [], []
    for fold, members in enumerate(dealt):
        photos = {int(p): np.flatnonzero(identities == p) for p in np.sort(members)}
        same = np.array([pair for rows in photos.values() for pair in combinations(rows, 2)]).reshape(-1, 2)
        if len(same) < half:
            raise ValueError(f"fold {fold}: {len(same)} same pairs possible, {half} needed; add people or photos")
        same = same[np.sort(rng.choice(len(same), half, replace=False))]
        member_of = np.concatenate(list(photos.values()))
        different: dict[tuple[int, int], None] = {}
        for _ in range(1000 * half):  # distinct pairs of two people of this fold, drawn until there are `half`
            a, b = sorted(rng.choice(member_of, 2, replace=False).tolist())
            if identities[a] != identities[b]:
                different.setdefault((a, b))
                if len(different) == half:
                    break
        if len(different) < half:
            raise ValueError(f"fold {fold}: only {len(different)} different pairs found, {half} needed")
        out_pairs += [same, np.array(list(different))]
        out_same += [np.ones(half, bool), np.zeros(half, bool)]
        out_fold.append(np.full(2 * half, fold))
    return np.concatenate(out_pairs), np.concatenate(out_same), np.concatenate(out_fold)


def draw_lineups(identities: np.ndarray, size: int, seed: int) -> np.ndarray:
    """(people, size) photo indices: each person's first photo, then the first photos of size - 1 other people
    drawn without repeats (seeded)."""
    identities = np.asarray(identities)
    people, first = np.unique(identities, return_index=True)
    if not 2 <= size <= len(people):
        raise ValueError(f"a lineup of {size} needs 2 to {len(people)} (the people) candidates")
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(2,)))
    lineups = np.empty((len(people), size), np.int64)
    for k in range(len(people)):
        others = rng.choice(len(people) - 1, size - 1, replace=False)
        others = others + (others >= k)  # skip the person themself
        lineups[k] = first[np.concatenate([[k], others])]
    return lineups


def check_shape(identities: int, photos_per_identity: int, pairs_per_fold: int, lineup_size: int) -> None:
    """ValueError, before anything is rendered, when the pairs or lineups cannot be drawn from a set of this shape."""
    if identities < 1 or photos_per_identity < 1:
        raise ValueError(f"need at least one person and one photo each, got {identities} x {photos_per_identity}")
    people = np.repeat(np.arange(identities), photos_per_identity)
    view2_pairs(people, pairs_per_fold, SEED)
    draw_lineups(people, lineup_size, SEED)


def build(
    root: str | Path = ROOT,
    identities: int = 1000,
    photos_per_identity: int = 4,
    size: int = 256,
    pairs_per_fold: int = 600,
    lineup_size: int = 10,
    seed: int = SEED,
    workers: int | None = None,
    progress: bool = True,
) -> LikenessBenchmark:
    """The benchmark at `root`: rendered on first use (resumed if interrupted), then read; pairs and lineups from
    the seed. Photos are aligned to the template at `size` px from their ground-truth points."""
    from game.dataset import generate, read_manifest

    if seed not in HELD_OUT_SEEDS:
        raise ValueError(f"seed {seed} is outside the held-out range [{HELD_OUT_SEEDS.start}, {HELD_OUT_SEEDS.stop})")
    check_shape(identities, photos_per_identity, pairs_per_fold, lineup_size)
    root = Path(root)
    was_complete = (root / "manifest.json").exists() and read_manifest(root).get("complete") is True
    began = time.perf_counter()
    generate(
        root,
        identities * photos_per_identity,
        size=size,
        style="photo",
        seed=seed,
        renders_per_identity=photos_per_identity,
        workers=workers,
        prior=PRIOR,
        extras=EXTRAS,
        progress=progress,
    )
    seconds = time.perf_counter() - began
    people = np.load(root / "identities.npy")
    pairs, is_same, folds = view2_pairs(people, pairs_per_fold, seed)
    bench = Benchmark(
        "likeness",
        size,
        [root / "images" / f"{i:07d}.jpg" for i in range(len(people))],
        list(np.load(root / "points.npy")),
        FIXED_PLACEMENT,
        pairs,
        is_same,
        folds,
        f"held-out synthetic photos {root}: ground-truth points",
        np.load(root / "parameters.npy"),
        people,
    )
    settings = {
        "root": str(root),
        "identities": identities,
        "photos_per_identity": photos_per_identity,
        "size": size,
        "pairs_per_fold": pairs_per_fold,
        "seed": seed,
        "prior": PRIOR,
        "extras": EXTRAS,
        # the render (and check) time of this build; a set that was complete before is only checked
        "render_seconds": None if was_complete else round(seconds, 1),
        "check_seconds": round(seconds, 1) if was_complete else None,
    }
    return LikenessBenchmark(bench, draw_lineups(people, lineup_size, seed), settings)
