"""The photo-to-character tool: face photos -> game presets, engine renders and side-by-side comparisons.

    python -m eval.reconstruct photo.jpg [more.jpg ...] [--ckpt RUN.ckpt|MODEL.pt|none] [--out runs/reconstruct]
                               [--no-skin-snap] [--size 256] [--all] [--mesh glb|obj]

Per photo (per face with --all: <stem>_face<k>): <stem>.json (the preset: all 267 parameters by name, in table
order, with the parameter-table version), <stem>_render.png (the game engine's screenshot of the preset) and
<stem>_side_by_side.png (aligned photo | render); with --mesh, <stem>.glb or <stem>.obj (the character's head mesh,
game.mesh_export). `python -m game render <stem>.json` renders a preset again. Without --ckpt the shipped default
model reads the photo (weights/default/model.pt, made by `make pretrained`; not in the paper: the mean of a
frozen-real-face-feature reader and a pixel reader); `--ckpt none` gives the neutral face, to try the pipeline
without a trained model. A photo that cannot be used (missing, a folder, damaged, no face) gets a one-line message
and the tool goes on; the exit status is 1 if any photo failed. A face found only in the photo turned by 90, 180
or 270 degrees is taken from the turned photo; a grayscale photo keeps every colour slider neutral, with a warning.
The arguments (--ckpt exists, --out can be written, the photos exist) are checked before the model loads.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from eval.align import AlignedFace, align_photo, is_grayscale, read_photo
from eval.character import COLOUR_SLIDERS, load_predictor, reconstruct_face
from eval.preflight import checkpoint_or_default, file_problem, folder_problem, refuse
from game import Game
from game.mesh_export import MESH_FORMATS, character_mesh, write_mesh
from game.presets import write_preset

PROG = "python -m eval.reconstruct"


def write_outputs(
    out: Path,
    stem: str,
    face: AlignedFace,
    params: np.ndarray,
    game: Game,
    notes: dict,
    mesh_format: str | None = None,
) -> None:
    """<stem>.json (the preset, game.presets, with `notes`), <stem>_render.png, <stem>_side_by_side.png (aligned
    photo | engine render) and, with `mesh_format` ("glb" or "obj"), <stem>.<mesh_format>, the head's mesh."""
    render = game.render(params)
    write_preset(out / f"{stem}.json", params, **notes)
    Image.fromarray(render).save(out / f"{stem}_render.png")
    Image.fromarray(np.concatenate([face.image, render], axis=1)).save(out / f"{stem}_side_by_side.png")
    if mesh_format:
        write_mesh(character_mesh(params, game), out / f"{stem}.{mesh_format}", mesh_format)


def photo_problem(path: Path) -> str | None:
    """Why `path` is not a photo file to open, or None (its content is judged when it is read)."""
    if path.is_dir():
        return f"cannot read {path}: is a folder, not a photo"
    if not path.is_file():
        return f"cannot read {path}: no such file"
    if not os.access(path, os.R_OK):
        return f"cannot read {path}: permission denied"
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n")[0])
    parser.add_argument("photos", nargs="+", type=Path, help="face photos (JPEG, PNG, ...)")
    parser.add_argument(
        "--ckpt",
        help="the model: a regression or reader checkpoint (.ckpt) or an exported model (.pt); 'none' for the "
        "neutral face; default: the shipped default model weights/default/model.pt (made by `make pretrained`)",
    )
    parser.add_argument("--out", type=Path, default=Path("runs/reconstruct"), help="output folder")
    parser.add_argument("--size", type=int, default=256, help="aligned photo and render side in pixels")
    parser.add_argument(
        "--no-skin-snap",
        dest="snap_skin",
        action="store_false",
        help="keep the predicted skin_tone instead of measuring it from the photo",
    )
    parser.add_argument(
        "--all",
        dest="several",
        action="store_true",
        help="process every face of a photo with several (default: report and skip it)",
    )
    parser.add_argument(
        "--mesh",
        choices=MESH_FORMATS,
        help="also write the character's head mesh beside its preset: glTF binary (.glb) or OBJ (.obj)",
    )
    args = parser.parse_args(argv)
    if args.size < 16:
        refuse(PROG, f"--size must be at least 16 px, got {args.size}")
    args.ckpt = checkpoint_or_default(PROG, args.ckpt)  # one line saying how to make the default when it is missing
    checkpoint = None if args.ckpt.lower() == "none" else str(args.ckpt)
    # Every argument is checked before the model loads: one line naming the file and the problem.
    if checkpoint and (problem := file_problem(checkpoint, "checkpoint file")):
        refuse(PROG, f"--ckpt {problem}")
    if problem := folder_problem(args.out):
        refuse(PROG, f"--out {args.out}: {problem}")
    failed, photos = 0, []
    for path in args.photos:
        if problem := photo_problem(path):
            print(f"skipped: {problem}", file=sys.stderr)
            failed += 1
        else:
            photos.append(path)
    if not photos:
        refuse(PROG, f"none of the {len(args.photos)} photos can be read")

    # Before the first render: importing triton (vector_quantize_pytorch, under the encoder) after Mesa's EGL
    # context exists crashes the process, as two LLVMs meet; the other order is fine.
    try:
        predictor = load_predictor(args.ckpt, args.size)
    except (OSError, KeyError, ValueError) as error:
        refuse(PROG, f"--ckpt {args.ckpt}: {error}")
    game = Game(args.size)
    try:
        args.out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        refuse(PROG, f"--out {args.out}: {error.strerror or error}")
    stems = set()
    for path in photos:
        try:
            photo = read_photo(path)
            faces = align_photo(photo, str(path), args.size, args.several)
        except ValueError as error:  # damaged file, no face, several faces: say so and go on
            print(f"skipped: {error}", file=sys.stderr)
            failed += 1
            continue
        colour = not is_grayscale(photo)
        if not colour:
            print(
                f"warning: {path} is a grayscale photo: its colours cannot be measured, so the colour sliders "
                f"({', '.join(COLOUR_SLIDERS)}) are kept neutral (0)",
                file=sys.stderr,
            )
        if faces[0].turned:
            print(
                f"note: {path}: the face was found upright with the photo turned {faces[0].turned} degrees "
                "counter-clockwise",
                file=sys.stderr,
            )
        for k, face in enumerate(faces):
            stem = path.stem if len(faces) == 1 else f"{path.stem}_face{k}"
            while stem in stems:  # a.jpg and a.png, or dir1/a.jpg and dir2/a.jpg, must not overwrite each other
                stem += "_"
            stems.add(stem)
            params = reconstruct_face(face, predictor, args.snap_skin, colour)
            notes = {
                "skin_tone_snapped": args.snap_skin and colour,
                "source": str(path),
                "checkpoint": checkpoint,
                "grayscale": not colour,
                "turned_degrees": face.turned,
            }
            try:
                write_outputs(args.out, stem, face, params, game, notes, args.mesh)
            except OSError as error:  # disk full, folder removed meanwhile: nothing more can be written
                refuse(PROG, f"writing {args.out / stem}: {error.strerror or error}")
            print(f"{path} -> {args.out / stem}.json (face score {face.score:.2f})")
    if failed:
        print(f"{failed} of {len(args.photos)} photos failed", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
