"""Export a parameter model to ONNX: aligned face crops -> the 267 game parameters, for any ONNX runtime.

    python -m eval.export [--ckpt MODEL.pt|RUN.ckpt] --out model.onnx [--size 256] [--overwrite]

Without --ckpt: the shipped default model (weights/default/model.pt), frozen extractors and calibration included;
a regression checkpoint (the paper's E + R) or a reader checkpoint exports the same way. The graph's input is
`image`, float32 (B, 3, SIZE, SIZE) RGB in [0, 1], a face aligned to the template (docs/contracts.md section 2);
its output `parameters`, float32 (B, 267) in [-2.5, 2.5] (eval/onnx_export.py; README, "Export"). Before the file
appears, onnxruntime runs it and must agree with torch within 1e-4. An existing --out is kept unless --overwrite.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from eval import descriptors
from eval.onnx_export import INPUT_NAME, OUTPUT_NAME, export_onnx
from eval.preflight import checkpoint_or_default, file_problem, folder_problem, refuse

PROG = "python -m eval.export"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n")[0])
    parser.add_argument(
        "--ckpt",
        help="the model: an exported reader (.pt), a reader or regression checkpoint (.ckpt); default: the shipped "
        "default model weights/default/model.pt",
    )
    parser.add_argument("--out", type=Path, required=True, help="the .onnx file to write")
    parser.add_argument("--size", type=int, default=256, help="side in px of the aligned crops the graph reads")
    parser.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    args = parser.parse_args(argv)
    if args.size < 16:
        refuse(PROG, f"--size must be at least 16 px, got {args.size}")
    args.ckpt = checkpoint_or_default(PROG, args.ckpt)  # one line saying how to make the default when it is missing
    # Every argument is checked before the model loads: one line naming the file and the problem.
    if problem := file_problem(args.ckpt, "checkpoint file"):
        refuse(PROG, f"--ckpt {problem}")
    if args.out.is_dir():
        refuse(PROG, f"--out {args.out} is a folder; name the .onnx file to write")
    if args.out.exists() and not args.overwrite:
        refuse(PROG, f"--out {args.out} exists; pass --overwrite to replace it (it was left as it is)")
    if problem := folder_problem(args.out.parent):
        refuse(PROG, f"--out {args.out}: {problem}")
    try:
        reader, model_size = descriptors.load_parameter_model(args.ckpt)
    except (OSError, KeyError, ValueError) as error:
        refuse(PROG, f"--ckpt {args.ckpt}: {error}")
    try:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        metadata = {"source": Path(args.ckpt).name, "exported_by": PROG}
        exported = export_onnx(reader, model_size, args.out, args.size, metadata)
    except OSError as error:  # disk full, folder removed meanwhile
        refuse(PROG, f"--out {args.out}: {error.strerror or error}")
    except Exception as error:  # noqa: BLE001 - the exporter raises many kinds; the user needs one line
        first_line = (str(error).strip().splitlines() or [type(error).__name__])[0]
        print(f"{PROG}: error: cannot export {args.ckpt}: {first_line}", file=sys.stderr)
        return 1
    megabytes = exported.path.stat().st_size / 1e6
    print(
        f"wrote {exported.path} ({megabytes:.1f} MB): {INPUT_NAME} float32 (B, 3, {args.size}, {args.size}) RGB in "
        f"[0, 1], aligned -> {OUTPUT_NAME} float32 (B, 267); onnxruntime agrees with torch to "
        f"{exported.max_abs_difference:.1g} (max abs)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
