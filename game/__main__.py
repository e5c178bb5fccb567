"""`python -m game COMMAND`: describe, generate, sheet, sensitivity, render."""

from __future__ import annotations

import argparse
import os
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
        verify=args.verify,
    )
    print(f"dataset: {root}")


def _sheet(args) -> None:
    from game.dataset import generate
    from game.sheet import grid, side_by_side, write_jpeg, write_png

    out = Path(args.out)
    for style in ("game", "photo"):
        panels = []
        for prior in args.priors:
            root = generate(
                out / f"{style}-{prior}-{args.size}",
                args.count,
                size=args.size,
                style=style,
                seed=args.seed,
                renders_per_identity=1,
                prior=prior,
                progress=False,
            )
            panels.append(grid(root, args.count, args.columns))
        labels = [f"{style} style, {prior} prior ({args.size} px)" for prior in args.priors]
        sheet = side_by_side(panels, labels)
        if args.jpeg_quality:
            path = write_jpeg(sheet, out / f"contact_{style}.jpg", args.jpeg_quality)
        else:
            path = write_png(sheet, out / f"contact_{style}.png", args.colours)
        print(f"{style}: {path}")


def _sensitivity(args) -> None:
    from game.sensitivity import VISIBILITY_THRESHOLD, measure, write_table

    _check_output_file(Path(args.out), "--out")
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
    from game.presets import read_preset

    source = Path(args.params)
    if source.suffix.lower() == ".json":  # one character's preset, named after it
        params, names = read_preset(source)[None], [source.stem]
    else:
        params = P.read_rows(source)
        names = [f"{i:04d}" for i in range(len(params))]
    out = Path(args.out)
    _check_output_folder(out, "--out")
    game = Game(args.size, args.style)
    for i, row in enumerate(params):
        image = game.render(row, np.random.default_rng([args.seed, i]))
        ok, data = cv2.imencode(".png", cv2.cvtColor(image, cv2.COLOR_RGB2BGR))  # the bytes cv2.imwrite writes
        files = [(out / f"{names[i]}.png", data.tobytes() if ok else None)]
        if args.mesh:
            from game.mesh_export import character_mesh, mesh_bytes

            files.append((out / f"{names[i]}.{args.mesh}", mesh_bytes(character_mesh(row, game), args.mesh)))
        for path, content in files:
            try:
                if content is None:
                    raise OSError("PNG encoding failed")
                out.mkdir(parents=True, exist_ok=True)
                path.write_bytes(content)
            except OSError as error:
                raise OSError(
                    f"{path}: cannot write ({error.strerror or error}); {i} of {len(params)} characters written"
                ) from None
    meshes = f" and {args.mesh.upper()} meshes" if args.mesh else ""
    print(f"{len(params)} images{meshes} in {args.out}")


def _check_output_folder(path: Path, argument: str) -> None:
    """Refuse an output folder that cannot be made or written, before any work (nothing is created here)."""
    existing = next(parent for parent in (path, *path.parents) if parent.exists() or parent == parent.parent)
    if not existing.is_dir():
        raise ValueError(f"{argument} {path}: {existing} is not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ValueError(f"{argument} {path}: {existing} is not writable")


def _check_output_file(path: Path, argument: str) -> None:
    """Refuse an output file whose place cannot be written (a folder in its place, a file as its folder)."""
    if path.is_dir():
        raise ValueError(f"{argument} {path}: a folder, expected a file name")
    _check_output_folder(path.parent, argument)


def _at_least(low: int):
    """argparse type: an integer >= low."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"must be at least {low}, got {value}")
        return value

    return parse


def _probability(text: str) -> float:
    """argparse type: a float in [0, 1]."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be a probability in [0, 1], got {text}")
    return value


class _Parser(argparse.ArgumentParser):
    """One line on a bad argument (no usage block): `python -m game generate: error: argument --size: ...`."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message}\n")


SIZE = _at_least(16)  # the engine's smallest picture


def main(argv=None) -> None:
    parser = _Parser(prog="python -m game", description="The likeness stand-in game.")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("describe", help="print the parameter table").set_defaults(run=_describe)
    gen = sub.add_parser("generate", help="render a screenshot dataset (resumable)")
    gen.add_argument("--out", required=True)
    gen.add_argument("--count", type=_at_least(1), required=True)
    gen.add_argument("--size", type=SIZE, default=256)
    gen.add_argument("--style", choices=("game", "photo"), default="game")
    gen.add_argument("--seed", type=int, default=0)
    gen.add_argument("--renders-per-identity", type=_at_least(1), default=4, help="photo style: photos per person")
    gen.add_argument("--workers", type=_at_least(1), default=None, help="processes (default: all cores)")
    gen.add_argument(
        "--prior",
        choices=("uniform", "realistic", "neutral_mix"),
        default="uniform",
        help="parameter distribution: the paper's uniform one, correlated 'realistic' faces, or "
        "'neutral_mix' (half uniform, half with random sliders at 0: for an imitator)",
    )
    for extra in ("expressions", "glasses", "occluders"):
        gen.add_argument(
            f"--{extra}", type=_probability, default=0.0, help=f"photo style: probability of {extra} per photo"
        )
    gen.add_argument(
        "--verify",
        choices=("header", "full"),
        default="header",
        help="how the images already there are checked before missing or damaged ones are re-rendered: "
        "signature, size and end marker (cheap) or a full decode",
    )
    gen.set_defaults(run=_generate)
    sheet = sub.add_parser(
        "sheet", help="random characters per style and prior: contact_{game,photo}.png, the priors side by side"
    )
    sheet.add_argument("--out", default="runs/sheet")
    sheet.add_argument("--size", type=SIZE, default=256)
    sheet.add_argument("--seed", type=int, default=0)
    sheet.add_argument("--count", type=_at_least(1), default=16, help="characters per style and prior")
    sheet.add_argument("--columns", type=_at_least(1), default=4)
    sheet.add_argument(
        "--priors", nargs="+", choices=("uniform", "realistic", "neutral_mix"), default=["uniform", "realistic"]
    )
    sheet.add_argument("--colours", type=_at_least(2), help="write PNGs with a palette of this many colours (smaller)")
    sheet.add_argument("--jpeg-quality", type=_at_least(1), help="write the sheets as JPEGs of this quality instead")
    sheet.set_defaults(run=_sheet)
    sens = sub.add_parser("sensitivity", help="per-parameter visibility table")
    sens.add_argument(
        "--out",
        default="runs/sensitivity/sensitivity.csv",
        help="CSV to write, JSON summary beside it (the game ships its table as game/data/sensitivity.csv)",
    )
    sens.add_argument("--size", type=SIZE, default=256)
    sens.add_argument("--faces", type=_at_least(1), default=8)
    sens.set_defaults(run=_sensitivity)
    render = sub.add_parser(
        "render",
        help="render parameter rows (.npy or .csv) or a preset (.json) to PNGs, optionally with meshes",
        description="Render characters to PNGs: rows of a .npy or .csv parameter file as OUT/0000.png, "
        "OUT/0001.png, ..., or a preset JSON (as python -m eval.reconstruct writes it) as OUT/<preset name>.png. "
        "With --mesh, each character's head is also written beside its PNG as a glTF binary (.glb, linear-light "
        "vertex colours) or an OBJ (sRGB vertex colours on the v lines), in the game's units: 1 = the neutral "
        "inter-ocular distance, y up, the face towards +z (docs/contracts.md).",
    )
    render.add_argument("params", help="a .npy or .csv file of parameter rows, or a preset .json")
    render.add_argument("--out", default="runs/render")
    render.add_argument("--size", type=SIZE, default=256)
    render.add_argument("--style", choices=("game", "photo"), default="game")
    render.add_argument("--seed", type=int, default=0)
    render.add_argument("--mesh", choices=("glb", "obj"), help="also write each character's head mesh in this format")
    render.set_defaults(run=_render)
    args = parser.parse_args(argv)
    try:
        args.run(args)
    except (ValueError, OSError) as error:  # bad input or an unwritable output: one line, non-zero exit
        sys.exit(f"{parser.prog} {args.command}: error: {' '.join(str(error).split())}")


if __name__ == "__main__":
    main()
