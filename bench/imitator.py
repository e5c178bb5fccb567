"""How well a trained imitator imitates the engine: PSNR and SSIM on fresh parameter vectors, as JSON.

    python -m bench.imitator --checkpoint runs/imitator/version_0/checkpoints/last.ckpt \
        [--count 1000] [--seed 20211020] [--scale 1.0] [--out bench/results/imitator.json]

The vectors are drawn from the game's prior U[-2.5, 2.5]^267 with a seed of their own, so they are
held out from any training set (a match has probability zero). The engine renders them at the
imitator's output size in the `game` style. `--scale s` multiplies them by s: 0 is the neutral face, small
values the near-neutral vectors a regressor gives for sliders a picture does not show.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from torchmetrics.functional.image import peak_signal_noise_ratio, structural_similarity_index_measure

from game.parameters import NUM_PARAMETERS
from models.checkpoints import load_network

DEFAULT_SEED = 20211020  # not the seed of any generated set (those default to 0)


def render_with_engine(parameters: np.ndarray, size: int) -> np.ndarray:
    """The game engine's screenshots of (N, 267) parameters: uint8 (N, S, S, 3) RGB, `game` style."""
    from game.engine import game_engine

    return game_engine(size).render_batch(parameters.astype(np.float32))


def held_out_parameters(count: int, seed: int, num_parameters: int = NUM_PARAMETERS) -> np.ndarray:
    """Fresh vectors from the uniform prior, float32 (count, num_parameters)."""
    return np.random.default_rng(seed).uniform(-2.5, 2.5, (count, num_parameters)).astype(np.float32)


@torch.no_grad()
def evaluate(net: torch.nn.Module, parameters: np.ndarray, batch_size: int = 100, device: str = "cpu") -> dict:
    """Mean PSNR, SSIM, MSE and MAE of the net's renders against the engine's, plus per-image PSNR spread."""
    net = net.eval().to(device)
    psnr, ssim, mse, mae = [], [], [], []
    for start in range(0, len(parameters), batch_size):
        rows = parameters[start : start + batch_size]
        engine = torch.from_numpy(render_with_engine(rows, net.image_size)).permute(0, 3, 1, 2).float() / 255
        engine = engine.to(device)
        imitated = net(torch.from_numpy(rows).to(device)).float().clamp(0, 1)
        psnr.append(peak_signal_noise_ratio(imitated, engine, data_range=1.0, reduction="none", dim=(1, 2, 3)))
        ssim.append(structural_similarity_index_measure(imitated, engine, data_range=1.0, reduction="none"))
        mse.append(((imitated - engine) ** 2).mean(dim=(1, 2, 3)))
        mae.append((imitated - engine).abs().mean(dim=(1, 2, 3)))
    psnr, ssim, mse, mae = (torch.cat(values).cpu() for values in (psnr, ssim, mse, mae))
    return {
        "psnr_db": float(psnr.mean()),
        "psnr_db_std": float(psnr.std()),
        "ssim": float(ssim.mean()),
        "ssim_std": float(ssim.std()),
        "mse": float(mse.mean()),
        "mae": float(mae.mean()),
    }


def main(argv=None) -> dict:
    """Evaluate a checkpoint and write the JSON report; returns it."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", required=True, help="a checkpoint of lightning_modules.imitator")
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--scale", type=float, default=1.0, help="multiply the vectors (0: the neutral face)")
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--out", default="bench/results/imitator.json")
    args = parser.parse_args(argv)

    net = load_network(args.checkpoint)
    parameters = held_out_parameters(args.count, args.seed, net.num_parameters) * np.float32(args.scale)
    started = time.perf_counter()
    metrics = evaluate(net, parameters, args.batch_size, args.device)
    report = {
        "checkpoint": str(args.checkpoint),
        "image_size": net.image_size,
        "count": args.count,
        "seed": args.seed,
        "prior": "uniform [-2.5, 2.5]" if args.scale == 1 else f"uniform [-2.5, 2.5] x {args.scale:g}",
        "device": args.device,
        **metrics,
        "seconds": round(time.perf_counter() - started, 2),
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))
    return report


if __name__ == "__main__":
    main()
