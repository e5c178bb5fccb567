"""Train the FastF2P translator on a game screenshot set and save it (the model and training: __init__.py).

python -m eval.baselines.fastf2p --imitator IMITATOR.ckpt --data data/game-game-256 --out fastf2p.ckpt
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import torch

from eval.baselines.f2p import build_content
from eval.baselines.fastf2p import WEIGHTS, save_translator, train_translator


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Train the FastF2P translator on a game screenshot set.")
    parser.add_argument("--imitator", required=True, help="imitator checkpoint (runs/NAME/version_N/checkpoints/...)")
    parser.add_argument("--data", required=True, help="game screenshot set (docs/contracts.md section 4)")
    parser.add_argument("--out", required=True, help="translator checkpoint to write")
    parser.add_argument("--face-id", default="dlib", choices=("dlib", "lightcnn29v2"))
    parser.add_argument("--face-id-checkpoint", default=None, help="LightCNN-29 v2's official checkpoint")
    parser.add_argument("--content", default="pixels", choices=("pixels", "landmarks"))
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--workers", type=int, default=0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    for name, value in WEIGHTS.items():
        parser.add_argument(f"--{name}-weight", type=float, default=value)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> Path:
    """Train and save a translator; the checkpoint records its F_id, imitator and per-epoch losses."""
    from models.checkpoints import load_network
    from models.face_id import build_face_id

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    args = parse_args(argv)
    imitator = load_network(args.imitator, "net").to(args.device)
    face_id = build_face_id(args.face_id, args.face_id_checkpoint).to(args.device)
    weights = {name: getattr(args, f"{name}_weight") for name in WEIGHTS}
    translator, history = train_translator(
        imitator,
        face_id,
        args.data,
        args.epochs,
        args.batch_size,
        args.lr,
        build_content(args.content),
        weights,
        args.seed,
        args.workers,
    )
    return save_translator(
        args.out,
        translator,
        args.face_id,
        imitator=str(args.imitator),
        data=str(args.data),
        content=args.content,
        weights=weights,
        history=history,
    )


if __name__ == "__main__":
    main()
