"""The verification loop: every descriptor over every benchmark image, the paper's protocol per pair list, recovery
where ground truth exists, and the likeness of the engine's character; one dict per run (eval/report.py prints it)."""

from __future__ import annotations

import logging
import time

import numpy as np
import torch

from eval import benchmarks as B
from eval.descriptors import FaceIdDescriptor
from eval.likeness import player_likeness
from eval.protocol import apply_mask, verify
from eval.recovery import recovery

log = logging.getLogger(__name__)


def compute_descriptors(
    bench: B.Benchmark,
    descriptors: list,
    batch_size: int = 64,
    mask: str | None = None,
    seconds: dict[str, float] | None = None,
) -> dict[str, np.ndarray]:
    """Each descriptor over every image of `bench` -> {name: (N, D)}; adds forward time to `seconds[name]`."""
    outputs: dict[str, list] = {d.name: [] for d in descriptors}
    for start in range(0, bench.num_images, batch_size):
        batch = apply_mask(benchmark_images(bench, range(start, min(start + batch_size, bench.num_images))), mask)
        for d in descriptors:
            began = time.perf_counter()
            out = d(batch).float().cpu()  # .cpu() waits for the device, so the time is the whole forward
            if seconds is not None:
                seconds[d.name] = seconds.get(d.name, 0.0) + time.perf_counter() - began
            outputs[d.name].append(out.numpy())
    return {name: np.concatenate(chunks) for name, chunks in outputs.items()}


def benchmark_images(bench: B.Benchmark, indices) -> torch.Tensor:
    """Images `indices` of a benchmark as (N, 3, S, S) float in [0, 1], aligned to the template."""
    return torch.from_numpy(np.stack([bench.image(int(i)) for i in indices])).permute(0, 3, 1, 2).float() / 255


def engine_likeness(
    bench: B.Benchmark, features: dict[str, np.ndarray], descriptors: list, count: int, imitator: torch.nn.Module | None
) -> dict[str, dict]:
    """Per parameter row, player_likeness on `count` evenly spread images of `bench`: {name: scores}."""
    face_id = next(d for d in descriptors if isinstance(d, FaceIdDescriptor))
    rows = np.linspace(0, bench.num_images - 1, min(count, bench.num_images)).astype(int)
    photos = benchmark_images(bench, rows)  # unmasked: likeness to the person, whatever part of the face the method saw
    scores = {}
    for d in descriptors:
        if d.is_parameters:
            scores[d.name] = player_likeness(photos, features[d.name][rows], face_id, imitator)
            del scores[d.name]["per_photo"]  # hundreds of numbers per row and benchmark: results.json stays readable
    return scores


def evaluate(
    benches: dict[str, B.Benchmark],
    descriptors: list,
    batch_size: int = 64,
    mask: str | None = None,
    visibility: np.ndarray | None = None,
    likeness_images: int = 0,
    imitator: tuple[torch.nn.Module | None, str] = (None, "no imitator given"),
) -> dict:
    """Accuracy per descriptor and benchmark, images/s, and recovery metrics where ground truth exists.

    With likeness_images > 0 and an F_id row, each parameter row also gets the likeness of the engine's character
    on that many images per benchmark (row "likeness", "imitator_vs_engine_psnr_db"; per benchmark under
    row[bench]["likeness"]); `imitator` is what load_imitator returns, the gap is left out without a network.
    """
    results: dict = {d.name: {} for d in descriptors}
    likeness = {"images": {}, "imitator": imitator[1], "skipped": None}
    if likeness_images <= 0:
        likeness["skipped"] = "switched off (--likeness-images 0)"
    elif not any(isinstance(d, FaceIdDescriptor) for d in descriptors):
        likeness["skipped"] = "it needs F_id, and this run has no F_id row (--face-id none, or it did not load)"
    elif not any(d.is_parameters for d in descriptors):
        likeness["skipped"] = "no row regresses game parameters"
    recoveries: dict = {}
    seconds: dict[str, float] = {}
    images = 0
    size = next(iter(benches.values())).size
    for d in descriptors:  # one untimed call first: lazy initialisation and kernel selection are not speed
        d(torch.zeros(min(batch_size, 8), 3, size, size))
    for name, bench in benches.items():
        log.info("%s: %d pairs over %d images", name, len(bench), bench.num_images)
        features = compute_descriptors(bench, descriptors, batch_size, mask, seconds)
        images += bench.num_images
        for d in descriptors:
            x = features[d.name]
            results[d.name][name] = verify(
                x[bench.pairs[:, 0]], x[bench.pairs[:, 1]], bench.is_same, bench.folds
            ).as_dict()
            if bench.parameters is not None and d.is_parameters:
                recoveries.setdefault(d.name, {})[name] = recovery(x, bench.parameters, visibility, bench.identities)
        if not likeness["skipped"]:
            log.info("%s: likeness of the engine's character", name)
            for row, scores in engine_likeness(bench, features, descriptors, likeness_images, imitator[0]).items():
                results[row][name]["likeness"] = scores
                likeness["images"][name] = scores["count"]
    # The mean is over the paper's benchmarks among those run (like Table 3), the synthetic set only when alone.
    averaged = [b for b in benches if b != "synthetic"] or list(benches)
    for d in descriptors:
        results[d.name]["mean"] = float(np.mean([results[d.name][b]["accuracy"] for b in averaged]))
        results[d.name]["images_per_second"] = images / max(seconds.get(d.name, 0.0), 1e-9)
        # The table's likeness columns pool the images of every benchmark run (means weighted by image count).
        scores = [results[d.name][b]["likeness"] for b in benches if "likeness" in results[d.name][b]]
        pooled = {"likeness": "face_id_cosine", "imitator_vs_engine_psnr_db": "imitator_vs_engine_psnr_db"}
        for column, key in pooled.items():
            if scores and key in scores[0]:
                results[d.name][column] = float(
                    np.average([s[key] for s in scores], weights=[s["count"] for s in scores])
                )
    return {"results": results, "recovery": recoveries, "likeness": likeness}


def add_rows(report: dict, benches: dict[str, B.Benchmark], descriptors: list, max_pairs: int, *settings) -> None:
    """Score the parameter rows of `descriptors` on about `max_pairs` pairs per benchmark (slow methods) and add
    them to `report` as "NAME (N pairs)"; `settings` are evaluate's after the descriptors."""
    limited = {name: B.limit_pairs(bench, max_pairs) for name, bench in benches.items()}
    scored = evaluate(limited, descriptors, *settings)
    for d in descriptors:
        if d.is_parameters:
            row = f"{d.name} ({max_pairs} pairs)"
            report["results"][row] = scored["results"][d.name]
            if d.name in scored["recovery"]:
                report["recovery"][row] = scored["recovery"][d.name]
