"""The stages of `make demo` (studies/demo/README.md): train through the LightningCLI unless a run has its
last.ckpt, render the sets, verify, score the 20-photo subset, run the photo tool. The demo's held-out benchmark
(`load_benchmark`) is also what the other studies score on."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
SIZE = 64
MAIN = "experiments/demo/main.yaml"
SUPERVISED = "experiments/demo/supervised.yaml"  # an overlay on MAIN
BENCH_EXTRAS = {"expressions": 0.5, "glasses": 0.3, "occluders": 0.2}
SUBSET = 20
DEFAULT_MODEL = REPO / "weights/default/model.pt"  # the shipped model (make pretrained)
LIKENESS_IDENTITIES = 1000  # bench/likeness.py's full benchmark: 4,000 photos, ~10 min on 2 cores


def log(message: str) -> None:
    print(f"[demo {time.strftime('%H:%M:%S')}] {message}", flush=True)


def latest_checkpoint(run: Path) -> Path | None:
    """The run's final-state checkpoint of a fit that ended; a fit interrupted mid-run does not count."""
    from lightning_modules.run_folder import finished_checkpoint

    return finished_checkpoint(run)


def train(configs: list[str], run: Path, redo: bool) -> Path:
    """Fit a LightningCLI experiment (a config and its overlays) unless its run already has a last.ckpt."""
    if redo and run.exists():
        shutil.rmtree(run)
    if latest_checkpoint(run) is None:
        log(f"training {' + '.join(configs)}")
        flags = [flag for config in configs for flag in ("--config", config)]
        subprocess.run([sys.executable, "-m", "lightning_modules.cli", "fit", *flags], check=True, cwd=REPO)
    return latest_checkpoint(run)


def fastf2p(imitator: Path, out: Path, redo: bool) -> Path:
    path = out / "fastf2p.ckpt"
    if redo or not path.exists():
        # 2,000 screenshots of the uniform prior (the first rows of the regression's 30,000): 3 epochs as measured.
        from game.dataset import generate

        # Rendered if missing, resumed if interrupted, returned at once if complete.
        data = generate(REPO / "data/game-game-64", 2000, size=SIZE, style="game", seed=0)
        log("training the FastF2P translator on the demo game set")
        subprocess.run(
            [
                sys.executable,
                "-m",
                "eval.baselines.fastf2p",
                "--imitator",
                str(imitator),
                "--data",
                str(data),
                "--out",
                str(path),
                "--epochs",
                "3",
            ],
            check=True,
            cwd=REPO,
        )
    return path


def benchmark_set(root: Path) -> Path:
    from game.dataset import generate

    log(f"benchmark photos -> {root}")
    return generate(
        root,
        400,
        size=SIZE,
        style="photo",
        seed=2,
        renders_per_identity=2,
        prior="realistic",
        extras=BENCH_EXTRAS,
        progress=False,
    )


def load_benchmark():
    """The demo's held-out synthetic benchmark (made on first use), aligned at the demo size."""
    from eval import benchmarks as B

    return B.load("synthetic", benchmark_set(REPO / "data/bench-64/synthetic"), SIZE, max_pairs=2000, seed=0)


def verify(checkpoints: dict[str, Path], translator: Path, bench, out: Path) -> dict:
    """Table 3 on the synthetic benchmark: our checkpoints, F_id, FastF2P."""
    from eval.baselines import build_baseline
    from eval.descriptors import build_descriptors, load_imitator
    from eval.evaluate import evaluate
    from eval.recovery import read_visibility
    from eval.report import PAPER, PROTOCOL, markdown

    descriptors, skipped = build_descriptors(
        [f"{name}={path}" for name, path in checkpoints.items()], "dlib", None, "cpu"
    )
    descriptors.append(build_baseline("fastf2p", str(translator)))
    report = {
        "kind": "likeness.verification",
        "version": 1,
        "image_size": SIZE,
        "mask": None,
        "device": "cpu",
        "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "protocol": PROTOCOL,
        "checkpoints": [str(path) for path in checkpoints.values()],
        "face_id": "dlib",
        "skipped": skipped,
        "benchmarks": {"synthetic": bench.summary()},
        "paper": PAPER[None],
    }
    report |= evaluate(
        {"synthetic": bench},
        descriptors,
        64,
        None,
        read_visibility(),
        likeness_images=200,
        imitator=load_imitator(None, [str(checkpoints["ours"])]),
    )
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(report, indent=2) + "\n")
    (out / "results.md").write_text(markdown(report))
    return report


def subset(checkpoints: dict[str, Path], imitator: Path, translator: Path, bench) -> dict:
    """F2P and the rest on the same 20 photos: recovery, speed, likeness of the engine's character."""
    from eval.baselines import build_baseline
    from eval.descriptors import ParameterDescriptor, load_regression
    from eval.evaluate import benchmark_images
    from eval.likeness import player_likeness
    from models.checkpoints import load_network
    from models.face_id import build_face_id

    rows = np.linspace(0, bench.num_images - 1, SUBSET).astype(int)  # fixed, spread over identities
    photos = benchmark_images(bench, rows)
    truth = bench.parameters[rows]
    face_id, imitator_net = build_face_id("dlib"), load_network(imitator, "net")
    methods = {name: ParameterDescriptor(name, *load_regression(path)) for name, path in checkpoints.items()}
    methods |= {"fastf2p": build_baseline("fastf2p", str(translator)), "f2p": build_baseline("f2p", str(imitator))}
    table = {}
    for name, method in methods.items():
        log(f"subset: {name}")
        began = time.perf_counter()
        predicted = method(photos).detach().cpu().numpy()
        seconds = time.perf_counter() - began
        likeness = player_likeness(photos, predicted, face_id, imitator_net)
        table[name] = {
            "photos_per_second": SUBSET / seconds,
            "rmse": float(np.sqrt(((predicted - truth) ** 2).mean())),
            "face_id_cosine_engine": likeness["face_id_cosine"],
            "imitator_vs_engine_psnr_db": likeness["imitator_vs_engine_psnr_db"],
        }
    truth_likeness = player_likeness(photos, truth, face_id, imitator_net)
    table["ground truth"] = {
        "rmse": 0.0,
        "face_id_cosine_engine": truth_likeness["face_id_cosine"],
        "imitator_vs_engine_psnr_db": truth_likeness["imitator_vs_engine_psnr_db"],
    }
    table["neutral face"] = {
        "rmse": float(np.sqrt((truth**2).mean())),
        "face_id_cosine_engine": player_likeness(photos, np.zeros_like(truth), face_id)["face_id_cosine"],
    }
    return table


def likeness(checkpoints: dict[str, Path], translator: Path, out: Path, identities: int) -> dict:
    """The likeness benchmark (bench/likeness.py, held-out recogniser, 256 px) for the shipped default model, both
    demo regressions and FastF2P; rendered once into data/benchmarks/likeness-256 and reused."""
    report = out / "likeness.json"
    log(f"likeness benchmark, {identities} people x 4 photos at 256 px")
    rows = {"default": DEFAULT_MODEL, "paper": checkpoints["ours"], "supervised": checkpoints["ours_supervised"]}
    flags = [flag for name, path in rows.items() for flag in ("--ckpt", f"{name}={path}")]
    flags += ["--baseline", f"fastf2p={translator}", "--identities", str(identities), "--out", str(report)]
    if identities != LIKENESS_IDENTITIES:  # a smaller benchmark is its own set, not a prefix of the full one
        flags += ["--root", f"data/benchmarks/likeness-256-{identities}"]
    subprocess.run([sys.executable, "-m", "bench.likeness", *flags], check=True, cwd=REPO, stdout=subprocess.DEVNULL)
    return json.loads(report.read_text()) | {"markdown": report.with_suffix(".md").read_text()}


def reconstruct(ckpt: Path | None, out: Path) -> Path:
    """The photo tool on scikit-image's astronaut: the shipped default model when ckpt is None."""
    import cv2
    import skimage.data

    photo = out / "astronaut.jpg"
    cv2.imwrite(str(photo), cv2.cvtColor(skimage.data.astronaut(), cv2.COLOR_RGB2BGR))
    folder = out / ("reconstruct" if ckpt is None else f"reconstruct-{ckpt.parents[2].name}")
    model = [] if ckpt is None else ["--ckpt", str(ckpt)]
    command = [sys.executable, "-m", "eval.reconstruct", str(photo), *model, "--out", str(folder), "--size", "256"]
    subprocess.run(command, check=True, cwd=REPO)
    return folder / "astronaut_side_by_side.png"
