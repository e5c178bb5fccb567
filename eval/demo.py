"""`make demo`: the whole method at CPU scale on a fresh machine, in stages reused once done.

    1. imitator     experiments/demo/imitator.yaml            -> runs/demo-imitator
    2. regression   experiments/demo/main.yaml                -> runs/demo-main          (the paper's objective)
                    + experiments/demo/supervised.yaml        -> runs/demo-supervised    (the measured best here)
    3. FastF2P      translator on the demo game set           -> runs/demo/fastf2p.ckpt
    4. benchmark    held-out synthetic photos: other identities (seed 2), the correlated "realistic"
                    prior, expressions, glasses and occluders -> data/bench-64/synthetic
    5. verify       ours, F_id's own embedding (upper bound) and FastF2P on the whole benchmark
    6. subset       F2P (400 steps, as published) and every other method on a fixed 20-photo subset:
                    recovery RMSE, speed, and the likeness of the ENGINE's character to the photo
    7. reconstruct  the tool on a real photo that scikit-image ships (NASA's astronaut portrait)
    8. report       runs/demo/REPORT.md

`python -m eval.demo [--out runs/demo] [--redo STAGE ...]`.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SIZE = 64
MAIN = "experiments/demo/main.yaml"
SUPERVISED = "experiments/demo/supervised.yaml"  # an overlay on MAIN
BENCH_EXTRAS = {"expressions": 0.5, "glasses": 0.3, "occluders": 0.2}
SUBSET = 20


def log(message: str) -> None:
    print(f"[demo {time.strftime('%H:%M:%S')}] {message}", flush=True)


def latest_checkpoint(run: Path) -> Path | None:
    found = sorted(run.glob("version_*/checkpoints/last.ckpt"), key=lambda p: p.stat().st_mtime)
    return found[-1] if found else None


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
    from eval import verify as V
    from eval.baselines import build_baseline

    descriptors, skipped = V.build_descriptors(
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
        "protocol": "3DMM-CNN: 10 folds; PCA on the training folds (no reduction), signed sqrt, cosine, "
        "best training-fold threshold",
        "checkpoints": [str(path) for path in checkpoints.values()],
        "face_id": "dlib",
        "skipped": skipped,
        "benchmarks": {"synthetic": bench.summary()},
        "paper": V.PAPER[None],
    }
    report |= V.evaluate(
        {"synthetic": bench},
        descriptors,
        64,
        None,
        V.read_visibility(),
        likeness_images=200,
        imitator=V.load_imitator(None, [str(checkpoints["ours"])]),
    )
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(report, indent=2) + "\n")
    (out / "results.md").write_text(V.markdown(report))
    return report


def subset(checkpoints: dict[str, Path], imitator: Path, translator: Path, bench) -> dict:
    """F2P and the rest on the same 20 photos: recovery, speed, likeness of the engine's character."""
    from eval import verify as V
    from eval.baselines import build_baseline
    from eval.likeness import player_likeness
    from models.checkpoints import load_network
    from models.face_id import build_face_id

    rows = np.linspace(0, bench.num_images - 1, SUBSET).astype(int)  # fixed, spread over identities
    photos = V.benchmark_images(bench, rows)
    truth = bench.parameters[rows]
    face_id, imitator_net = build_face_id("dlib"), load_network(imitator, "net")
    methods = {name: V.ParameterDescriptor(name, *V.load_regression(path)) for name, path in checkpoints.items()}
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


def reconstruct(ckpt: Path, out: Path) -> Path:
    import cv2
    import skimage.data

    photo = out / "astronaut.jpg"
    cv2.imwrite(str(photo), cv2.cvtColor(skimage.data.astronaut(), cv2.COLOR_RGB2BGR))
    subprocess.run(
        [
            sys.executable,
            "-m",
            "eval.reconstruct",
            str(photo),
            "--ckpt",
            str(ckpt),
            "--out",
            str(out / "reconstruct"),
            "--size",
            "256",
        ],
        check=True,
        cwd=REPO,
    )
    return out / "reconstruct" / "astronaut_side_by_side.png"


def comparison(verification: dict, subset_table: dict) -> list[str]:
    """Plain sentences for every baseline that beats ours, with the likely reason (the report must say so)."""
    from eval import verify as V

    results = verification["results"]
    ours = results["ours"]["synthetic"]["accuracy"]
    lines = []
    for name, row in results.items():
        if name != "ours" and row["synthetic"]["accuracy"] > ours:
            lines.append(
                f"- **{name}** verifies better than ours on the synthetic benchmark "
                f"({row['synthetic']['accuracy']:.3f} vs {ours:.3f})."
            )
    for name in ("ours", "ours_supervised"):
        recovered = verification["recovery"].get(name, {}).get("synthetic")
        if recovered is None:
            continue
        lines.append(
            f"- **{name}**, all 267 parameters: RMSE {recovered['rmse']:.3f} vs the neutral face's "
            f"{recovered['rmse_predicting_zero']:.3f}; {V.verdict_line(recovered)}"
        )
        if "visible" in recovered:
            v = recovered["visible"]
            lines.append(
                f"- **{name}**, the {len(v['parameters'])} visible parameters: RMSE {v['rmse']:.3f} vs "
                f"{v['rmse_predicting_zero']:.3f}; {V.verdict_line(v)} Correlations: "
                + ", ".join(f"{n} r = {x['correlation']:.2f}" for n, x in v["parameters"].items())
                + "."
            )
    lines += [
        "",
        "Likely reasons. Most of the 267 parameters barely change a 64 px picture (bench/results/",
        "sensitivity.csv: half move a 256 px screenshot by under 0.05 grey levels per unit), and in minutes",
        "of CPU training a network reads few of them: trained on nothing but the screenshots' true",
        "parameters for 1,000 steps of 64, the demo's E and R get 2.5% under the neutral face's RMSE on",
        "held-out SCREENSHOTS and a plain ResNet-18 10% (bench/results/screenshot_readability/). Neither",
        "survives the photo style on its own: scored on this benchmark, both are 17-32% WORSE than the",
        "neutral face. The domain gap, not the reading, decides the overall RMSE here; the visible",
        "parameters are where a method shows. Both regressions scale each parameter by a factor fitted on",
        "1,500 held-out screenshots (callbacks/shrinkage.py, not in the paper), which keeps what R cannot",
        "read at the neutral face. ours (the paper's terms without L_domain) has nothing that aligns the",
        "photos' answers with the screenshots', so the photo style shifts what it reads; ours_supervised",
        "(experiments/demo/supervised.yaml) learns from the screenshots' true parameters, a tenth of the",
        "pixel loss and L_contrastive, and aligns the photos' mean parameters with the screenshots' (a",
        "linear-kernel MMD; the paper's Gaussian kernel collapses the regression at this scale). FastF2P",
        "is trained with a parameter loss on the game set and verifies better because it starts from F_id's",
        "embedding, made for telling people apart.",
    ]
    return lines


def write_report(out: Path, verification: dict, subset_table: dict, runs: dict, side_by_side: Path) -> Path:
    from eval import verify as V

    lines = [
        "# likeness demo report",
        "",
        "CPU scale (64 px, a few minutes of training per stage on 2 cores): a smoke test of the whole method",
        "and of every tool, not the paper's numbers. Regenerate with `make demo`.",
        "",
        f"- imitator: `{runs['imitator']}`",
        f"- regression, the paper's objective (ours): `{runs['main']}`",
        f"- regression, screenshot-supervised (ours_supervised): `{runs['supervised']}`",
        "",
        V.markdown(verification),
        "",
        f"## F2P and everyone else on the same {SUBSET} benchmark photos",
        "",
        "Likeness is the F_id (dlib) cosine between the photo and the ENGINE's render of the regressed",
        "parameters; the imitator gap is PSNR between the imitator's and the engine's picture of them.",
        "",
        "| method | photos/s | parameter RMSE | F_id cosine (engine render) | imitator vs engine PSNR (dB) |",
        "|---|---|---|---|---|",
    ]
    for name, row in subset_table.items():
        speed = f"{row['photos_per_second']:.1f}" if "photos_per_second" in row else "-"
        gap = f"{row['imitator_vs_engine_psnr_db']:.1f}" if "imitator_vs_engine_psnr_db" in row else "-"
        lines.append(f"| {name} | {speed} | {row['rmse']:.3f} | {row['face_id_cosine_engine']:.3f} | {gap} |")
    lines += ["", "## Where ours does not win, and the likely reason", ""] + comparison(verification, subset_table)
    lines += [
        "",
        "Known weakness of the synthetic benchmark: the 3D extractor (MediaPipe's landmarks) shares the",
        "engine's mesh topology, so L_3d is close to supervision here; compare with the w/o-consistency",
        "ablation (experiments/ablations/no_consistency.yaml) before reading much into the recovery numbers.",
        "",
        "## Pictures",
        "",
    ]
    for run in ("main", "supervised"):
        for title, pattern in (
            ("t-SNE of source vs target parameters over training (Fig. 4)", "tsne*.png"),
            ("Image grids (photo | imitator render; screenshot | reconstruction)", "step*.png"),
        ):
            images = sorted((Path(runs[run]).parents[1] / "images").glob(pattern))
            if images:
                lines += [f"### {title}, {Path(runs[run]).parents[2].name}", ""]
                lines += [f"![{p.name}]({p.resolve()})" for p in images[-3:]] + [""]
    lines += [
        "### The reconstruct tool on a real photo (scikit-image's astronaut)",
        "",
        f"![astronaut]({side_by_side.resolve()})",
        "",
    ]
    report = out / "REPORT.md"
    report.write_text("\n".join(lines))
    return report


def main(argv=None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="runs/demo")
    parser.add_argument(
        "--redo",
        nargs="*",
        default=[],
        choices=("imitator", "main", "supervised", "fastf2p"),
        help="stages to run again even if their output exists",
    )
    args = parser.parse_args(argv)
    out = REPO / args.out
    out.mkdir(parents=True, exist_ok=True)
    imitator = train(["experiments/demo/imitator.yaml"], REPO / "runs/demo-imitator", "imitator" in args.redo)
    main_ckpt = train([MAIN], REPO / "runs/demo-main", "main" in args.redo)
    supervised = train([MAIN, SUPERVISED], REPO / "runs/demo-supervised", "supervised" in args.redo)
    checkpoints = {"ours": main_ckpt, "ours_supervised": supervised}
    translator = fastf2p(imitator, out, "fastf2p" in args.redo)
    bench = load_benchmark()
    log("verification on the synthetic benchmark")
    verification = verify(checkpoints, translator, bench, out / "verify")
    subset_table = subset(checkpoints, imitator, translator, bench)
    (out / "subset.json").write_text(json.dumps(subset_table, indent=2) + "\n")
    side_by_side = reconstruct(supervised, out)
    runs = {"imitator": imitator, "main": main_ckpt, "supervised": supervised}
    report = write_report(out, verification, subset_table, runs, side_by_side)
    log(f"report: {report}")
    return report


if __name__ == "__main__":
    main()
