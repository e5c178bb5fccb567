"""Inference paths on the CPU: eager, channels-last, torch.compile and onnxruntime (eval.fast_inference.PATHS) for
the shipped default model and the paper's E + R, photo detection and landmarks, and F2P's per-photo optimisation.

The library of `python -m bench.inference` (its default run). Each path runs the model's whole path from an aligned
crop (eval.onnx_export.ParameterGraph); its rate is the best of a few interleaved rounds (the machine may be shared:
a burst of other work lowers a round, never raises one), its FLOP utilisation that rate times the FLOPs per image
(torch.utils.flop_counter: convolutions and matmuls) over this machine's own dense matmul rate, measured in the same
run, and it counts as correct when its outputs are within 1e-4 of eager's on the same crops.
"""

from __future__ import annotations

import math
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from bench.timing import matmul_flops_per_second, rate_per_second
from eval.fast_inference import PATHS, build_path
from eval.onnx_export import TOLERANCE, ParameterGraph

MODELS = ("default", "paper")
SIZES = (64, 128, 256)
F2P_STEPS = 400
PAPER_CONFIG = Path(__file__).resolve().parents[1] / "experiments" / "main.yaml"


def paper_reader(size: int) -> torch.nn.Module:
    """The paper's E + R (experiments/main.yaml's widths) at `size` px, untrained (speed does not depend on the
    weights). Its codebooks keep the library's random init: k-means on an untrained encoder's crowded outputs gives
    near-identical codes, whose nearest-code near-ties resolve differently in two runtimes' float32 rounding (3e-4
    apart at 128 px) - an artefact of the untrained net, not of a path (a trained demo E + R exports to 4e-7)."""
    import yaml

    from models.readers import EncoderRegressorReader
    from models.regressor import Regressor
    from models.vqvae2 import VQVAE2

    model = yaml.safe_load(PAPER_CONFIG.read_text())["model"]["init_args"]
    torch.manual_seed(0)
    encoder = VQVAE2(**(model["encoder"]["init_args"] | {"image_size": size, "kmeans_init": False}))
    regressor = Regressor(**(model["regressor"]["init_args"] | {"image_size": size}))
    reader = EncoderRegressorReader(encoder, regressor).eval()
    return reader


def model_graph(model: str, size: int) -> ParameterGraph:
    """`default` (weights/default/model.pt: crops are resized inside to the size each of its readers was trained
    at) or `paper` (E + R built at `size`), reading aligned crops of `size` px."""
    if model == "default":
        from eval.descriptors import default_model, load_parameter_model

        reader, model_size = load_parameter_model(default_model())
        return ParameterGraph(reader, model_size, size).eval()
    return ParameterGraph(paper_reader(size), size, size).eval()


def aligned_crops(size: int, batch: int) -> torch.Tensor:
    """(batch, 3, size, size) real aligned crops: scikit-image's astronaut through eval.align, then slightly noisy
    copies of it."""
    from skimage import data

    from eval.align import align_photo

    face = align_photo(data.astronaut(), "skimage.data.astronaut()", size)[0]
    crop = torch.from_numpy(face.image).permute(2, 0, 1)[None].float() / 255
    noise = 0.02 * torch.randn(batch - 1, 3, size, size, generator=torch.Generator().manual_seed(0))
    return torch.cat([crop, (crop + noise).clamp(0, 1)])


def flops_per_image(graph: ParameterGraph, images: torch.Tensor) -> float:
    """Convolution and matmul FLOPs of one image through the graph."""
    with torch.inference_mode(), FlopCounterMode(display=False) as counter:
        graph(images)
    return counter.get_total_flops() / len(images)


def measure_paths(graph: ParameterGraph, images: torch.Tensor, rounds: int, onnx_file: Path) -> tuple[dict, dict]:
    """({path: setup_seconds, first_call_seconds, max_abs_difference, correct, images_per_second}, {path: error})."""
    results, errors, runs = {}, {}, {}
    reference = None
    for name in PATHS:
        if name == "compile":  # every row compiles afresh: no graph made dynamic by, or reused from, the last row
            torch.compiler.reset()
        try:
            began = time.perf_counter()
            run = build_path(name, graph, onnx_file)
            setup = time.perf_counter() - began
            began = time.perf_counter()
            output = run(images)
            first_call = time.perf_counter() - began
        except Exception as error:  # noqa: BLE001 - a path that fails (no compiler, an op without ONNX) is a result
            errors[name] = f"{type(error).__name__}: {error}"[:2000]
            continue
        reference = output if name == "eager" else reference
        difference = float((output - reference).abs().max())
        results[name] = {
            "setup_seconds": setup,
            "first_call_seconds": first_call,
            "max_abs_difference": difference,
            "correct": difference <= TOLERANCE,
        }
        runs[name] = run
    # Each timing ~1 s; the rounds interleave the paths, so a slow spell of the machine hits all of them alike.
    calls = max(1, math.ceil(1.0 / max(results["eager"]["first_call_seconds"], 1e-3)))
    for _ in range(rounds):
        for name, run in runs.items():
            rate = rate_per_second(lambda run=run: run(images), len(images), repeats=calls)
            results[name]["images_per_second"] = max(rate, results[name].get("images_per_second", 0.0))
    return results, errors


def f2p(size: int, batch: int, steps: int = 10, device: str = "cpu") -> dict:
    """F2P's rate from a few optimisation steps, scaled to its 400 (each step costs the same)."""
    from eval.baselines.f2p import F2P
    from models.face_id import build_face_id
    from models.imitator import Imitator

    device = torch.device(device)
    estimator = F2P(Imitator(image_size=size).eval().to(device), build_face_id("dlib").to(device), steps=steps)
    estimator.content.to(device)
    photos = torch.rand(batch, 3, size, size, device=device)
    per_step = rate_per_second(lambda: estimator(photos), batch, repeats=2, device=device) * steps
    return {"images_per_second": per_step / F2P_STEPS, "measured_steps": steps, "batch": batch}


def alignment_milliseconds(repeats: int = 5) -> dict:
    """Per photo (the astronaut, 512 x 512), best of `repeats`: one detect-then-mesh pass (eval.align.align_faces:
    BlazeFace, two landmark passes, the warp) and the photo tool's whole alignment (align_photo, which also tries
    the photo turned by 180 degrees)."""
    from skimage import data

    from eval.align import align_faces, align_photo

    photo = data.astronaut()
    align_photo(photo, "astronaut")  # loads the networks
    times = {}
    for name, run in (("align_faces", lambda: align_faces(photo)), ("align_photo", lambda: align_photo(photo, "a"))):
        best = math.inf
        for _ in range(repeats):
            began = time.perf_counter()
            run()
            best = min(best, time.perf_counter() - began)
        times[f"{name}_ms"] = 1000 * best
    return times


def app_round_trip_milliseconds(size: int = 256, moves: int = 20) -> dict:
    """The web app's work for one slider move at `size` px, as its page handler does it (eval.app_page `move`):
    the edit, both views (front and three-quarter), the preset and the .glb rewritten, and both views encoded as
    the PNGs the page sends; median and best over `moves` moves of one slider. The browser's own share (Gradio's
    queue, the image fetch, the repaint) is not in it: tests/test_app_browser.py drives a real page."""
    import io

    from PIL import Image

    from eval.creator import Character, Creator

    creator = Creator(None, size)
    character = Character(key="bench")
    timings = []
    try:
        for value in np.linspace(-2.5, 2.5, moves + 1):  # the first move builds the head and the GL resources
            began = time.perf_counter()
            character.edit("head_width", float(value))
            views = creator.views(character.parameters)
            creator.write_preset(character), creator.write_mesh(character)
            for view in views:
                Image.fromarray(view).save(io.BytesIO(), format="png")
            timings.append(1000 * (time.perf_counter() - began))
    finally:
        creator.close()
    timings = timings[1:]
    return {
        "size": size,
        "moves": moves,
        "median_ms": float(np.median(timings)),
        "best_ms": float(min(timings)),
        "load_average": load_average(),
    }


def path_rows(
    models, sizes, batch: int, rounds: int, f2p_batch: int, f2p_steps: int, matmul: float, report: dict, save
) -> None:
    """One row per (model, size) into report["rows"], `save()` after each; failing paths into report["errors"].
    `f2p_steps` 0 leaves F2P out."""
    with tempfile.TemporaryDirectory() as cache:
        for model in models:
            for size in sizes:
                graph = model_graph(model, size)
                images = aligned_crops(size, batch)
                flops = flops_per_image(graph, images)
                onnx_file = Path(cache) / f"{model}-{size}.onnx"
                results, errors = measure_paths(graph, images, rounds, onnx_file)
                eager = results["eager"]["images_per_second"]
                for result in results.values():
                    result["flop_utilisation"] = result["images_per_second"] * flops / matmul
                    result["speedup_over_eager"] = result["images_per_second"] / eager
                correct = {name: r for name, r in results.items() if r["correct"]}
                row = {
                    "model": model,
                    "size": size,
                    "batch": batch,
                    "flops_per_image": flops,
                    "paths": results,
                    "chosen": max(correct, key=lambda name: correct[name]["images_per_second"]),
                }
                if model == "paper" and f2p_steps:
                    row["f2p"] = f2p(size, f2p_batch, f2p_steps)
                    row["speedup_vs_f2p"] = eager / row["f2p"]["images_per_second"]
                report["rows"].append(row)
                report["errors"] += [{"model": model, "size": size, "path": p, "error": e} for p, e in errors.items()]
                print(
                    f"{model} {size} px: "
                    + ", ".join(f"{name} {r['images_per_second']:.1f}/s" for name, r in results.items())
                    + f"; chosen {row['chosen']}"
                    + "".join(f"; {p} FAILED {e[:200]}" for p, e in errors.items()),
                    flush=True,
                )
                save()


def matmul_reference(rounds: int = 5) -> float:
    """This machine's dense fp32 matmul FLOP/s (1024 x 1024), the best of `rounds`: the denominator of utilisation,
    as unaffected by other work on the cores as the paths' own best-of rates."""
    return max(matmul_flops_per_second() for _ in range(rounds))


def set_utilisation(report: dict, matmul: float) -> None:
    """Every path's FLOP utilisation against `matmul` FLOP/s."""
    report["matmul_flops_per_second"] = matmul
    for row in report["rows"]:
        for result in row["paths"].values():
            result["flop_utilisation"] = result["images_per_second"] * row["flops_per_image"] / matmul


def load_average() -> list[float]:
    """The machine's 1, 5 and 15 minute load averages (other work on the cores while the bench ran)."""
    return [round(x, 2) for x in os.getloadavg()]


def readme_block(report: dict) -> str:
    """The markdown of the paths run: one table row per (model, size), F2P beside the paper's rows, alignment."""
    table = [
        "| model | px | GFLOP / image | eager images/s | channels-last | torch.compile (first call) "
        "| onnxruntime (export) | chosen | speed-up over eager | utilisation (chosen; eager) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in report["rows"]:
        paths = row["paths"]

        def rate(name: str, note: str | None = None, paths=paths) -> str:
            if name not in paths:
                return "failed"
            text = f"{paths[name]['images_per_second']:.1f}"
            text += "" if paths[name]["correct"] else " (differs)"
            return text + (f" ({paths[name][note]:.0f} s)" if note else "")

        chosen = paths[row["chosen"]]
        table.append(
            f"| {row['model']} | {row['size']} | {row['flops_per_image'] / 1e9:.2f} | {rate('eager')} | "
            f"{rate('channels_last')} | {rate('compile', 'first_call_seconds')} | "
            f"{rate('onnxruntime', 'setup_seconds')} | {row['chosen']} | {chosen['speedup_over_eager']:.2f}x | "
            f"{chosen['flop_utilisation']:.0%}; {paths['eager']['flop_utilisation']:.0%} |"
        )
    f2p_rows = [r for r in report["rows"] if "f2p" in r]
    if f2p_rows:
        table += ["", "| px | paper E + R eager images/s | F2P images/s (400 steps) | E + R / F2P |"]
        table.append("|---|---|---|---|")
        for r in f2p_rows:
            table.append(
                f"| {r['size']} | {r['paths']['eager']['images_per_second']:.1f} | "
                f"{r['f2p']['images_per_second']:.4f} | {r['speedup_vs_f2p']:.0f}x |"
            )
    align = report.get("alignment") or {}
    if align:
        table += [
            "",
            f"Detection + landmarks per photo (astronaut, 512 px; best of 5): {align['align_faces_ms']:.0f} ms for one "
            f"detect-then-mesh pass (`eval.align.align_faces`), {align['align_photo_ms']:.0f} ms for the photo tool's "
            "alignment (`align_photo`, which also tries the photo turned by 180 degrees).",
        ]
    trip = report.get("app_round_trip") or {}
    if trip:
        table += [
            "",
            f"The app's slider-to-render round trip on the server ({trip['size']} px, median of {trip['moves']} moves, "
            f"best {trip['best_ms']:.0f} ms, load average {trip['load_average'][0]:g} on the 2 cores): "
            f"**{trip['median_ms']:.0f} ms** for the edit, both views, the preset and mesh files and the two PNGs "
            "(goal <= 150 ms; the browser's share is Gradio's queue and the image fetch).",
        ]
    return "\n".join(table)


def summary(report: dict) -> str:
    """One line per row: the chosen path and its ratio, for the console."""
    return "\n".join(
        f"{r['model']} {r['size']} px: {r['chosen']} x{r['paths'][r['chosen']]['speedup_over_eager']:.2f} over eager"
        for r in report["rows"]
    )
