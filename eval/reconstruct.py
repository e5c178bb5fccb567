"""The photo-to-character tool: face photos -> game presets, engine renders and side-by-side comparisons.

    python -m eval.reconstruct photo.jpg [more.jpg ...] --ckpt RUN.ckpt [--out runs/reconstruct]
                               [--no-skin-snap] [--size 256] [--all]

Per photo (per face with --all: <stem>_face<k>): <stem>.json (the preset: all 267 parameters by name, in table
order, with the parameter-table version), <stem>_render.png (the game engine's screenshot of the preset) and
<stem>_side_by_side.png (aligned photo | render). `--ckpt none` gives the neutral face, to try the pipeline
without a trained model. A photo that cannot be used gets a one-line message and the tool goes on; the exit
status is 1 if any photo failed.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from eval.align import AlignedFace, align_photo, read_photo
from game import Game
from game import parameters as P
from game.appearance import estimate_skin_tone
from models.checkpoints import load_network, read_checkpoint

Predictor = Callable[[torch.Tensor], torch.Tensor]


def load_predictor(ckpt: str | Path | None) -> Predictor:
    """images (B, 3, S, S) float RGB in [0, 1] -> parameters (B, 267), from a regression checkpoint or 'none'.

    The checkpoint's encoder E and regressor R (models.checkpoints.load_network) run at the size E
    was built for; other sizes are resized to it. 'none' (or None) predicts the neutral face, all zeros.
    A checkpoint trained on another parameter table is refused: its 267 outputs mean other sliders.
    """
    if ckpt is None or str(ckpt).lower() == "none":
        return lambda images: torch.zeros(len(images), P.NUM_PARAMETERS)
    checkpoint = read_checkpoint(ckpt)
    # The DataModule's state (docs/contracts.md section 6) sits under its class name; look in every entry.
    recorded = {v.get("parameter_table_version") for v in checkpoint.values() if isinstance(v, dict)} - {None}
    P.check_same_table(ckpt, ", ".join(sorted(recorded)), "this game", P.TABLE_VERSION)
    encoder, regressor = load_network(ckpt, "encoder"), load_network(ckpt, "regressor")
    size = encoder.image_size

    @torch.no_grad()
    def predict(images: torch.Tensor) -> torch.Tensor:
        if images.shape[-1] != size:
            images = F.interpolate(images, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
        params = regressor(encoder(images).features).parameters
        return params

    return predict


def preset(params: np.ndarray, snapped: bool, source: str, checkpoint: str | None) -> dict:
    """The JSON preset of one character: every parameter by name in table order, and where it came from."""
    return {
        "parameter_table_version": P.TABLE_VERSION,
        "parameters": {name: float(v) for name, v in zip(P.names(), params)},
        "skin_tone_snapped": snapped,
        "source": source,
        "checkpoint": checkpoint,
    }


def reconstruct_face(face: AlignedFace, predictor: Predictor, snap_skin: bool) -> np.ndarray:
    """(267,) float32 parameters of one aligned face; skin tone from the photo's own pixels if `snap_skin`."""
    image = torch.from_numpy(face.image).permute(2, 0, 1)[None].float() / 255
    params = predictor(image)[0].detach().cpu().double().numpy()
    # R ends in 2.5 * tanh; the clip only guards stand-in predictors and float round-off.
    params = np.clip(params, P.LOW, P.HIGH)
    if snap_skin:  # the regressor sees a domain-shifted photo; the skin's measured colour is more reliable
        params[P.index_of("skin_tone")] = estimate_skin_tone(face.image)[0]
    return P.validate(params, "predicted parameters")[0]


def write_outputs(out: Path, stem: str, face: AlignedFace, params: np.ndarray, game: Game, meta: dict) -> None:
    """<stem>.json, <stem>_render.png and <stem>_side_by_side.png (aligned photo | engine render)."""
    render = game.render(params)
    (out / f"{stem}.json").write_text(json.dumps(meta, indent=1) + "\n")
    Image.fromarray(render).save(out / f"{stem}_render.png")
    Image.fromarray(np.concatenate([face.image, render], axis=1)).save(out / f"{stem}_side_by_side.png")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m eval.reconstruct", description=__doc__.split("\n")[0])
    parser.add_argument("photos", nargs="+", type=Path, help="face photos (JPEG, PNG, ...)")
    parser.add_argument("--ckpt", required=True, help="regression checkpoint (.ckpt), or 'none' for the neutral face")
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
    args = parser.parse_args(argv)
    if args.size < 16:
        parser.error(f"--size must be at least 16 px, got {args.size}")

    # Before the first render: importing triton (vector_quantize_pytorch, under the encoder) after Mesa's EGL
    # context exists crashes the process, as two LLVMs meet; the other order is fine.
    try:
        predictor = load_predictor(args.ckpt)
    except (OSError, KeyError, ValueError) as error:  # one line naming the file and what is wrong, exit status 1
        raise SystemExit(f"--ckpt: {error.args[0] if isinstance(error, KeyError) else error}") from None
    checkpoint = None if args.ckpt.lower() == "none" else str(args.ckpt)
    game = Game(args.size)
    args.out.mkdir(parents=True, exist_ok=True)
    failed, stems = 0, set()
    for path in args.photos:
        try:
            faces = align_photo(read_photo(path), str(path), args.size, args.several)
        except ValueError as error:  # unreadable file, no face, several faces: say so and go on
            print(f"skipped: {error}", file=sys.stderr)
            failed += 1
            continue
        for k, face in enumerate(faces):
            stem = path.stem if len(faces) == 1 else f"{path.stem}_face{k}"
            while stem in stems:  # a.jpg and a.png, or dir1/a.jpg and dir2/a.jpg, must not overwrite each other
                stem += "_"
            stems.add(stem)
            params = reconstruct_face(face, predictor, args.snap_skin)
            write_outputs(args.out, stem, face, params, game, preset(params, args.snap_skin, str(path), checkpoint))
            print(f"{path} -> {args.out / stem}.json (face score {face.score:.2f})")
    if failed:
        print(f"{failed} of {len(args.photos)} photos failed", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
