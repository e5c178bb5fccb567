"""The held-out likeness benchmark (eval/benchmarks/held_out.py), its scores (eval/likeness_bench.py, eval/lineup.py)
and `python -m bench.likeness`: shape, disjoint seeds, determinism, known answers, the JSON schema."""

from __future__ import annotations

import ast
import inspect
import json
import re
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import yaml

from eval.benchmarks import held_out
from eval.benchmarks.base import FIXED_PLACEMENT, Benchmark
from eval.likeness_bench import ROW_KEYS, gap_closed, score, visible_set
from eval.lineup import lineup_credit

REPO = Path(__file__).resolve().parents[1]
TINY = {"identities": 20, "photos_per_identity": 3, "size": 32, "pairs_per_fold": 6, "lineup_size": 10}


def build_tiny(root: Path) -> held_out.LikenessBenchmark:
    return held_out.build(root, **TINY, workers=1, progress=False)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> held_out.LikenessBenchmark:
    return build_tiny(tmp_path_factory.mktemp("likeness") / "set")


def check_view2(identities: np.ndarray, pairs: np.ndarray, is_same: np.ndarray, folds: np.ndarray, per_fold: int):
    """10 folds x per_fold pairs, half same; same pairs are one person, different two; folds hold disjoint people."""
    assert sorted(np.unique(folds)) == list(range(10))
    people_of_fold = []
    for fold in range(10):
        here = folds == fold
        assert here.sum() == per_fold and is_same[here].sum() == per_fold // 2
        a, b = identities[pairs[here, 0]], identities[pairs[here, 1]]
        assert np.array_equal(a == b, is_same[here])
        assert len({tuple(p) for p in pairs[here]}) == per_fold  # no pair twice
        people_of_fold.append(set(a) | set(b))
    assert sum(len(p) for p in people_of_fold) == len(set().union(*people_of_fold))  # no person in two folds
    assert (pairs[:, 0] != pairs[:, 1]).all()


def test_full_size_pairs_have_lfw_view2_shape():
    """The default benchmark's pairs (drawn without rendering): 10 folds x 600 pairs, 300 same and 300 different."""
    identities = np.arange(1000 * 4) // 4
    pairs, is_same, folds = held_out.view2_pairs(identities, 600, held_out.SEED)
    assert len(pairs) == 6000
    check_view2(identities, pairs, is_same, folds, 600)


def test_tiny_benchmark_size_pairs_and_lineups(tiny):
    bench = tiny.bench
    assert bench.num_images == 60 and bench.parameters.shape == (60, 267)
    assert bench.image(0).shape == (32, 32, 3)
    check_view2(bench.identities, bench.pairs, bench.is_same, bench.folds, 6)
    lineups = tiny.lineups
    assert lineups.shape == (20, 10)
    first = np.unique(bench.identities, return_index=True)[1]
    assert np.array_equal(lineups[:, 0], first)  # each person's own first photo
    people = bench.identities[lineups]
    assert all(len(set(row)) == 10 for row in people)  # ten different people per lineup
    summary = tiny.summary()
    assert summary["seed"] == held_out.SEED and summary["lineup_photos"] == 20 and summary["pairs"] == 60


def test_two_builds_are_identical(tiny, tmp_path):
    again = build_tiny(tmp_path / "again")
    for name in ("parameters.npy", "identities.npy", "points.npy"):
        assert (Path(tiny.settings["root"]) / name).read_bytes() == (tmp_path / "again" / name).read_bytes()
    for a, b in zip(tiny.bench.sources, again.bench.sources):
        assert Path(a).read_bytes() == Path(b).read_bytes()
    for field in ("pairs", "is_same", "folds"):
        assert np.array_equal(getattr(tiny.bench, field), getattr(again.bench, field))
    assert np.array_equal(tiny.lineups, again.lineups)


def training_seeds() -> dict[str, int]:
    """Every data or run seed the training configs, studies, dataset defaults and benches use: {where: seed}."""
    found = {}
    for path in sorted((REPO / "experiments").rglob("*.yaml")):
        config = yaml.safe_load(path.read_text()) or {}
        if "seed_everything" in config:
            found[f"{path.name}: seed_everything"] = config["seed_everything"]
        data = (config.get("data") or {}).get("init_args") or {}
        for where, settings in (("generate", data.get("generate")), ("source", (data.get("source") or {}))):
            settings = settings.get("generate") if where == "source" else settings
            if settings is not None:
                found[f"{path.name}: {where}"] = settings.get("seed", 0)  # datamodules/cross_domain.py's default
    pattern = re.compile(r"seed[\"']?\s*[=:]\s*(\d+)|--seeds?\"?,.*default=\[?([\d, ]+)")
    for path in sorted([*(REPO / "studies").rglob("*.py"), *(REPO / "datamodules").rglob("*.py")]):
        for number, line in enumerate(path.read_text().splitlines(), 1):
            for match in pattern.finditer(line):
                for seed in re.findall(r"\d+", match.group(1) or match.group(2)):
                    found[f"{path.relative_to(REPO)}:{number}"] = int(seed)
    from game.dataset import generate

    found["game.dataset.generate default"] = inspect.signature(generate).parameters["seed"].default
    tree = ast.parse((REPO / "game" / "__main__.py").read_text())
    for node in ast.walk(tree):  # every --seed default of the game's command line
        if isinstance(node, ast.Call) and any(isinstance(a, ast.Constant) and a.value == "--seed" for a in node.args):
            found[f"game/__main__.py:{node.lineno}"] = next(k.value.value for k in node.keywords if k.arg == "default")
    from bench.imitator import DEFAULT_SEED

    found["bench/imitator.py DEFAULT_SEED"] = DEFAULT_SEED
    return found


def training_photo_sets() -> list[tuple[int, int]]:
    """(seed, count) of every photo-style set a config renders as a training source."""
    sets = []
    for path in sorted((REPO / "experiments").rglob("*.yaml")):
        source = (((yaml.safe_load(path.read_text()) or {}).get("data") or {}).get("init_args") or {}).get("source")
        if source and source.get("generate"):
            sets.append((source["generate"].get("seed", 0), source["generate"]["count"]))
    return sets


def test_seeds_are_disjoint_from_every_training_set():
    seeds = training_seeds()
    assert {"main.yaml: generate", "main.yaml: source", "game.dataset.generate default"} <= set(seeds)
    assert {0, 1, 2} <= set(seeds.values())  # the target sets, the demo's photo source and its benchmark
    assert all(0 <= seed < held_out.HELD_OUT_SEEDS.start for seed in seeds.values()), seeds
    # One 32-bit word, above every training seed: the first word of every stream of the set differs from theirs.
    assert held_out.SEED in held_out.HELD_OUT_SEEDS and held_out.HELD_OUT_SEEDS.stop == 2**32
    with pytest.raises(ValueError, match="held-out range"):
        held_out.build("unused", seed=1)
    # Backgrounds are drawn by a 31-bit seed of their own: none of the benchmark's is a training photo's.
    from game.dataset import row_rng
    from game.photo_style import sample_photo_conditions

    def backgrounds(seed: int, count: int) -> set[int]:
        return {sample_photo_conditions(row_rng(seed, i)).background_seed for i in range(count)}

    sets = training_photo_sets()
    assert (1, 1200) in sets  # the demo's photo source
    ours = backgrounds(held_out.SEED, 4000)
    for seed, count in sets:
        assert not ours & backgrounds(seed, count), (seed, count)


def test_prior_and_extras_are_the_demo_benchmarks():
    from studies.demo.stages import BENCH_EXTRAS

    assert held_out.EXTRAS == BENCH_EXTRAS and held_out.PRIOR == "realistic"


def test_visible_set_is_fixed_at_90_sliders():
    # engine v2's sensitivity table (docs/contracts.md 3.3); engine v1's held 64
    assert len(visible_set()) == 90


def test_lineup_known_answers():
    rng = np.random.default_rng(0)
    people = 2000
    lineups = np.stack([np.concatenate([[k], rng.choice(np.delete(np.arange(people), k), 9, replace=False)])
                        for k in range(people)])  # fmt: skip
    photos = rng.normal(size=(people, 16))
    assert lineup_credit(photos, photos, lineups).mean() == 1.0  # own character = own photo
    shuffled = lineup_credit(photos, photos[rng.permutation(people)], lineups).mean()
    assert 0.08 < shuffled < 0.12  # chance is 1 in 10
    same = np.ones((people, 16))  # everyone the same character (the neutral face): ties shared, exactly chance
    assert lineup_credit(photos, same, lineups) == pytest.approx(np.full(people, 0.1))


def test_gap_closed_known_answers():
    truth, neutral = np.full(5, 0.8), np.full(5, 0.2)
    assert gap_closed(np.full(5, 0.5), neutral, truth) == pytest.approx(0.5)
    assert gap_closed(truth, neutral, truth) == pytest.approx(1.0)
    assert gap_closed(neutral, neutral, truth) == pytest.approx(0.0)


def colour(parameters: np.ndarray) -> np.ndarray:
    """A fake character's colour: three sliders squashed into (0, 1); the neutral face is grey 0.5."""
    return 0.5 + 0.45 * np.tanh(np.asarray(parameters)[:, :3])


def fake_render(parameters: np.ndarray, size: int) -> torch.Tensor:
    """A flat image of the character's colour."""
    return torch.from_numpy(colour(parameters)).float()[:, :, None, None].expand(-1, -1, size, size).clone()


def fake_recogniser(images: torch.Tensor) -> torch.Tensor:
    """Mean colour away from grey: a flat photo of a person and their character's render embed alike."""
    return images.mean((2, 3)) - 0.5


class Replay:
    """A method that returns fixed rows in order (score reads the photos in order)."""

    def __init__(self, rows: np.ndarray):
        self.rows, self.next = rows, 0

    def __call__(self, photos: torch.Tensor) -> torch.Tensor:
        out = self.rows[self.next : self.next + len(photos)]
        self.next += len(photos)
        return torch.from_numpy(out).float()


def fake_benchmark(people: int = 200, per_person: int = 2, size: int = 16) -> held_out.LikenessBenchmark:
    """Flat PNG photos in each person's colour, with the benchmark's pairs and lineups."""
    identities = np.arange(people * per_person) // per_person
    truth = np.random.default_rng(1).uniform(-2.5, 2.5, (people, 267)).astype(np.float32)[identities]
    pixels = np.round(colour(truth) * 255).astype(np.uint8)
    sources = [cv2.imencode(".png", np.full((size, size, 3), p[::-1], np.uint8))[1].tobytes() for p in pixels]
    pairs, is_same, folds = held_out.view2_pairs(identities, 20, seed=held_out.SEED)
    bench = Benchmark("fake", size, sources, [None] * len(sources), FIXED_PLACEMENT, pairs, is_same, folds, "flat",
                      truth, identities)  # fmt: skip
    return held_out.LikenessBenchmark(bench, held_out.draw_lineups(identities, 10, held_out.SEED), {})


def test_scores_on_known_answers():
    held = fake_benchmark()
    truth = held.bench.parameters
    shuffled = truth[np.random.default_rng(2).permutation(len(truth))]
    methods = {"copy": Replay(truth), "shuffled": Replay(shuffled)}
    report = score(held, methods, fake_recogniser, fake_render, visible=np.arange(64), batch_size=32, resamples=200)
    rows = report["rows"]
    assert list(rows) == ["copy", "shuffled", "truth", "neutral", "face_id"]
    assert all(set(row) == set(ROW_KEYS) for row in rows.values())
    assert rows["truth"]["all_rmse_ratio"] == 0 and rows["neutral"]["all_rmse_ratio"] == pytest.approx(1.0)
    assert rows["copy"] == rows["truth"]  # the same parameters, rendered and embedded alike
    assert rows["truth"]["likeness"] == pytest.approx(1.0, abs=1e-3)  # photo and character alike up to 8-bit
    assert rows["truth"]["likeness_gap_closed"] == pytest.approx(1.0)
    assert rows["neutral"]["likeness_gap_closed"] == 0.0
    assert rows["truth"]["lineup_top1"] == 1.0
    assert rows["neutral"]["lineup_top1"] == pytest.approx(0.1)  # ties shared: chance, not 1
    assert 0.03 < rows["shuffled"]["lineup_top1"] < 0.2
    assert rows["shuffled"]["all_rmse_ratio"] > 1.2  # another person's face: farther than the neutral one
    assert rows["truth"]["verification"] == 1.0 and rows["neutral"]["verification"] == 0.5
    assert rows["face_id"]["verification"] > 0.9
    assert {k for k, v in rows["face_id"].items() if v is not None} == {"verification"}
    low, high = report["intervals"]["shuffled"]["lineup_top1"]
    assert low <= rows["shuffled"]["lineup_top1"] <= high


def test_command_line_writes_the_schema(tmp_path):
    from bench.likeness import main

    out = tmp_path / "results" / "likeness.json"
    sizes = [f"--{k.replace('_', '-')}={v}" for k, v in TINY.items()]
    main([*sizes, "--root", str(tmp_path / "set"), "--workers", "1", "--resamples", "100", "--out", str(out)])
    report = json.loads(out.read_text())
    assert list(report["rows"]) == ["truth", "neutral", "face_id"]
    for name, row in report["rows"].items():
        assert set(row) == set(ROW_KEYS), name
        assert isinstance(row["verification"], float)
    assert len(report["rows"]["truth"]["all_rmse_ratio_interval"]) == 2
    assert isinstance(report["recogniser"], str) and isinstance(report["held_out"], bool)
    if not report["held_out"]:
        assert report["recogniser_caveat"]
    assert report["visible"]["count"] == 90  # engine v2 (v1: 64)
    assert sum("no checkpoint given" in note for note in report["notes"]) == 3  # default, paper, fastf2p
    assert report["benchmark"]["identities"] == 20 and report["benchmark"]["render_seconds"] is not None
    assert "| truth |" in out.with_suffix(".md").read_text()


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--identities", "10"], "need at least 20 people for 10 folds, got 10"),
        (["--identities", "20", "--photos-per-identity", "1", "--pairs-per-fold", "6"], "0 same pairs possible"),
        (["--identities", "20", "--photos-per-identity", "3", "--pairs-per-fold", "7"], "must be even"),
        (["--identities", "20", "--lineup-size", "21", "--pairs-per-fold", "6"], "a lineup of 21 needs 2 to 20"),
    ],
)
def test_a_benchmark_shape_that_cannot_be_drawn_is_refused_before_rendering(tmp_path, capsys, flags, message):
    from bench.likeness import main

    with pytest.raises(SystemExit) as stopped:
        main([*flags, "--root", str(tmp_path / "set"), "--out", str(tmp_path / "likeness.json")])
    assert stopped.value.code != 0 and message in capsys.readouterr().err
    assert not (tmp_path / "set").exists()


@pytest.mark.parametrize(
    ("argv", "command_line", "recorded"),
    [(None, ["prog", "--sizes", "64"], ["--sizes", "64"]), (("--epochs", "3"), ["prog", "ignored"], ["--epochs", "3"])],
)
def test_a_study_report_records_the_arguments_it_ran_with(monkeypatch, argv, command_line, recorded):
    """A study run from the command line passes argv=None: the report must still say how it was run."""
    from eval import likeness_bench

    class Held:
        def summary(self) -> dict:
            return {"identities": 2}

    judge = {"recogniser": "stand-in", "held_out": True}
    monkeypatch.setattr(likeness_bench, "load_recogniser", lambda: (torch.nn.Identity(), judge))
    monkeypatch.setattr(likeness_bench, "visible_set", lambda: [0, 1])
    monkeypatch.setattr(likeness_bench, "score", lambda *args, **kwargs: {"rows": {}})
    monkeypatch.setattr(likeness_bench.sys, "argv", command_line)
    report = likeness_bench.study_report(Held(), {}, "likeness.test", argv)
    assert report["argv"] == recorded and report["kind"] == "likeness.test" and report["visible"] == 2
    json.dumps(report)  # the report is written as JSON
