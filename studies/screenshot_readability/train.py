"""How much of the game's parameters can a network read from its screenshots, and do the demo's networks limit it?

    python -m studies.screenshot_readability NET [NET ...] [--root data/game-game-64-30k] [--count 30000]
        [--steps 1500] [--batch-size 64] [--eval-every 250] [--lr 1e-3] [--benchmark]
        [--out studies/screenshot_readability/results]

NET is one of NETWORKS: `resnet18` (timm, from scratch: a reference CNN with nothing of ours in it), `demo` (the
demo's VQ-VAE-2 encoder and Table-1 regressor, built from experiments/demo/main.yaml) or `demo_unquantised` (the
same with both codebooks bypassed). Supervision only: MSE to the screenshots' true parameters, Adam, no photos,
no imitator. Every --eval-every steps one row goes to stdout and OUT/NET.json: the RMSE on the set's held-out
rows (split.json "val", 5%, drawn as the demo's datamodule draws it) over the RMSE of predicting 0 (the neutral
face). That ratio is what "closer than the constant predictor" can reach on clean screenshots, before any domain
gap. A missing set is rendered first (`game generate`, seed 0, uniform prior: its first 2,000 rows are the demo's
data/game-game-64). --benchmark also scores each trained network on the demo's held-out photo-style benchmark
(studies/demo/stages.py) with eval.recovery's bootstrap interval: how much of what was read on screenshots survives the
photo style when nothing aligns the two domains.
"""

from __future__ import annotations

import argparse
import json
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
from torch import nn

from models.modes import evaluating
from studies.screenshot_readability.networks import build


def load_set(root: Path, count: int, size: int) -> tuple[torch.Tensor, np.ndarray, dict]:
    """(N, 3, S, S) uint8 images, (N, 267) parameters, the split; renders the set on first use."""
    from datamodules.screenshots import load_image, open_screenshot_set
    from datamodules.split import load_or_make_split
    from game.dataset import generate_once

    generate_once(root, count, size=size, style="game", seed=0)
    screenshots = open_screenshot_set(root)
    with ThreadPoolExecutor(2) as pool:
        images = np.stack(list(pool.map(lambda path: load_image(path, size), screenshots.files)))
    split = load_or_make_split(root / "split.json", len(screenshots), 0.05, 0)  # the demo datamodule's settings
    return torch.from_numpy(images).permute(0, 3, 1, 2).contiguous(), screenshots.parameters, split


@torch.no_grad()
def predict(net: nn.Module, images: torch.Tensor) -> np.ndarray:
    """Parameters of (N, 3, S, S) images, uint8 or float in [0, 1]."""
    scale = 255 if images.dtype == torch.uint8 else 1
    with evaluating(net):
        return torch.cat([net(images[i : i + 256].float() / scale)[0] for i in range(0, len(images), 256)]).numpy()


def held_out_ratio(net: nn.Module, images: torch.Tensor, truth: np.ndarray) -> float:
    return float(np.sqrt(((predict(net, images) - truth) ** 2).mean() / (truth**2).mean()))


def benchmark_score(net: nn.Module) -> dict:
    """RMSE over the neutral face's on the demo benchmark, with its bootstrap interval over people."""
    from eval.evaluate import benchmark_images
    from eval.recovery import ratio_interval
    from studies.demo.stages import load_benchmark

    bench = load_benchmark()
    predicted = predict(net, benchmark_images(bench, range(bench.num_images)))
    return ratio_interval(
        (predicted - bench.parameters) ** 2, bench.parameters.astype(np.float64) ** 2, bench.identities
    )


def run(name: str, images: torch.Tensor, parameters: np.ndarray, split: dict, args: argparse.Namespace) -> dict:
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    net = build(name)
    optimizer = torch.optim.Adam(net.parameters(), lr=args.lr)
    train, val = np.asarray(split["train"]), np.asarray(split["val"])
    targets = torch.from_numpy(parameters) / 2.5
    log = {
        "network": name,
        "settings": {k: str(v) for k, v in vars(args).items()},
        "trainable_parameters": sum(p.numel() for p in net.parameters() if p.requires_grad),
        "rows": [],
    }
    started = time.perf_counter()
    for step in range(1, args.steps + 1):
        rows = rng.choice(train, args.batch_size)
        predicted, differ = net(images[rows].float() / 255)
        loss = (predicted / 2.5 - targets[rows]).pow(2).mean() + 0.25 * differ
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if step % args.eval_every == 0 or step == args.steps:
            line = {
                "step": step,
                "seconds": round(time.perf_counter() - started, 1),
                "train_loss": round(loss.item(), 4),
                "held_out_rmse_over_neutral": round(held_out_ratio(net, images[val], parameters[val]), 4),
            }
            print(name, json.dumps(line), flush=True)
            log["rows"].append(line)
            (args.out / f"{name}.json").write_text(json.dumps(log, indent=1) + "\n")  # a killed run keeps its rows
    if args.benchmark:
        log["benchmark"] = benchmark_score(net)
        print(name, "benchmark", json.dumps(log["benchmark"]), flush=True)
        (args.out / f"{name}.json").write_text(json.dumps(log, indent=1) + "\n")
    return log
