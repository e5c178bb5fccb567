"""`python -m game COMMAND`: describe, generate, sheet, sensitivity, render."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np


def _describe(args) -> None:
    from game.parameters import describe

    print(describe())


def _generate(args) -> None:
    from game.dataset import generate

    extras = {"expressions": args.expressions, "glasses": args.glasses, "occluders": args.occluders}
    root = generate(
        args.out,
        args.count,
        size=args.size,
        style=args.style,
        seed=args.seed,
        renders_per_identity=args.renders_per_identity,
        workers=args.workers,
        prior=args.prior,
        extras=extras if args.style == "photo" else None,
    )
    print(f"dataset: {root}")


def _sheet(args) -> None:
    from game.dataset import generate
    from game.sheet import contact_sheet

    out = Path(args.out)
    for style in ("game", "photo"):
        root = generate(
            out / f"{style}-{args.size}",
            16,
            size=args.size,
            style=style,
            seed=args.seed,
            renders_per_identity=1,
            progress=False,
        )
        print(f"{style}: {contact_sheet(root, out / f'contact_{style}.png')}")


def _sensitivity(args) -> None:
    from game.sensitivity import VISIBILITY_THRESHOLD, measure, write_table

    values = measure(size=args.size, faces=args.faces)
    path = write_table(values, args.out, args.size, args.faces)
    invisible = int((values < VISIBILITY_THRESHOLD).sum())
    print(f"sensitivity: {path} (min {values.min():.3f}, median {np.median(values):.3f}; {invisible} invisible)")
    if invisible:
        sys.exit(1)


def _render(args) -> None:
    import cv2

    from game import parameters as P
    from game.engine import Game

    params = np.load(args.params) if args.params.endswith(".npy") else np.loadtxt(args.params, delimiter=",")
    params = P.validate(params, args.params)
    game = Game(args.size, args.style)
    for i, row in enumerate(params):
        image = game.render(row, np.random.default_rng([args.seed, i]))
        path = Path(args.out) / f"{i:04d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(path), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    print(f"{len(params)} images in {args.out}")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m game", description="The likeness stand-in game.")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("describe", help="print the parameter table").set_defaults(run=_describe)
    gen = sub.add_parser("generate", help="render a screenshot dataset (resumable)")
    gen.add_argument("--out", required=True)
    gen.add_argument("--count", type=int, required=True)
    gen.add_argument("--size", type=int, default=256)
    gen.add_argument("--style", choices=("game", "photo"), default="game")
    gen.add_argument("--seed", type=int, default=0)
    gen.add_argument("--renders-per-identity", type=int, default=4, help="photo style: photos per person")
    gen.add_argument("--workers", type=int, default=None, help="processes (default: all cores)")
    gen.add_argument(
        "--prior",
        choices=("uniform", "realistic", "neutral_mix"),
        default="uniform",
        help="parameter distribution: the paper's uniform one, correlated 'realistic' faces, or "
        "'neutral_mix' (half uniform, half with random sliders at 0: for an imitator)",
    )
    for extra in ("expressions", "glasses", "occluders"):
        gen.add_argument(f"--{extra}", type=float, default=0.0, help=f"photo style: probability of {extra} per photo")
    gen.set_defaults(run=_generate)
    sheet = sub.add_parser("sheet", help="16 random characters per style and a contact sheet of each")
    sheet.add_argument("--out", default="runs/sheet")
    sheet.add_argument("--size", type=int, default=256)
    sheet.add_argument("--seed", type=int, default=0)
    sheet.set_defaults(run=_sheet)
    sens = sub.add_parser("sensitivity", help="per-parameter visibility table")
    sens.add_argument(
        "--out",
        default="runs/sensitivity/sensitivity.csv",
        help="CSV to write, JSON summary beside it (the game ships its table as game/data/sensitivity.csv)",
    )
    sens.add_argument("--size", type=int, default=256)
    sens.add_argument("--faces", type=int, default=8)
    sens.set_defaults(run=_sensitivity)
    render = sub.add_parser("render", help="render parameter rows (.npy or .csv) to PNGs")
    render.add_argument("params")
    render.add_argument("--out", default="runs/render")
    render.add_argument("--size", type=int, default=256)
    render.add_argument("--style", choices=("game", "photo"), default="game")
    render.add_argument("--seed", type=int, default=0)
    render.set_defaults(run=_render)
    args = parser.parse_args(argv)
    args.run(args)


if __name__ == "__main__":
    main()
