#!/usr/bin/env bash
# The GPU path in one pass on a lent machine: environment and imports, the gpu-marked tests, inference and
# imitator-training speed (bench/inference.py, bench/training.py), two short Lightning fits through the CLI
# with DDP + bf16-mixed (imitator, then the regression on the fresh imitator), and the game engine on EGL.
# Each step has its own timeout and records its exit status, so one failure does not stop the others.
# Results in $OUT: gpu_results.json (steps, exit codes, headline numbers), gpu_log.txt (every step's output),
# inference_gpu.json, inference_compile_gpu.json, training_gpu.json, engine_gpu.json, fit_{imitator,main}_metrics.csv.
#
# The machine has no registry. `bash bench/gpu_check.sh prepare` (here, once) fills three git-ignored folders:
# .whl/ (the packages its image lacks, constraints.txt versions, for Python 3.12), .gpucache/ (the weight
# cache) and .gl/ (glvnd's EGL loader, unpacked there only if the image has none). Carry those three and
# data/game-game-64 data/photo-64 (the demo sets, made by `make demo` or the demo configs).
# CPU rehearsal at toy sizes: DEVICE=cpu PY=.venv/bin/python OUT=/tmp/gpuout RUNS=/tmp/gpuruns bash bench/gpu_check.sh
WHEELS=(vector-quantize-pytorch einx torch-einops-utils frozendict loguru einops pytorch-metric-learning albumentations
        albucore pydantic pydantic_core annotated-types typing-inspection typing_extensions stringzilla simsimd
        jsonargparse docstring_parser typeshed_client tflite moderngl glcontext)
if [ "${1:-}" = prepare ]; then
    set -e
    for folder in .whl .gpucache .gl; do grep -qx "/$folder/" .git/info/exclude || echo "/$folder/" >>.git/info/exclude; done
    pins=$(for name in "${WHEELS[@]}"; do grep -ix "$name==.*" constraints.txt; done)
    python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp -d .whl \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
        --platform manylinux1_x86_64 $pins
    rm -rf .gpucache && cp -r "${LIKENESS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/likeness}" .gpucache
    mkdir -p .gl /tmp/amd64/partial
    apt=(-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists=/tmp/amd64)
    apt-get "${apt[@]}" update -qq
    (cd .gl && apt-get "${apt[@]}" download -qq libegl1 libglvnd0 libopengl0 libgl1 libglx0 libgles2 libvulkan1)
    du -sh .whl .gpucache .gl
    exit 0
fi

set -u -o pipefail
: "${OUT:?set OUT to the results folder}"
source "$(dirname "$0")/gpu_lib.sh"

if [ "$DEVICE" = cuda ]; then
    ACCEL=gpu FIT_STEPS=20 VAL_EVERY=10 WORKERS=4
    INFER=(--sizes 256 --batch 1 256 1024 --variants fp32 bf16 channels_last cudnn_benchmark --f2p-batch 8)
    COMPILE=(--sizes 256 --batch 256 1024 --variants compile --f2p-batch 8)
    TRAIN=(--size 256 --batch 128 --steps 20 --variants fp32 bf16 channels_last cudnn_benchmark)
    RENDER_COUNT=64 RENDER_SIZE=256
else  # toy sizes: this only checks that every step and override runs
    ACCEL=cpu FIT_STEPS=2 VAL_EVERY=2 WORKERS=1
    INFER=(--sizes 64 --batch 2 --variants fp32 bf16 --f2p-batch 2 --f2p-steps 1)
    COMPILE=(--sizes 64 --batch 2 --variants compile --f2p-batch 2 --f2p-steps 1)
    TRAIN=(--size 64 --batch 4 --steps 2 --warmup 1 --variants fp32 bf16)
    RENDER_COUNT=4 RENDER_SIZE=64
fi

# 1. The machine, and every module of ours imported (catches packages missing from the image and .whl).
[ "$DEVICE" = cuda ] && step nvidia_smi 30 nvidia-smi
step environment 90 "$PY" - <<'EOF'
import importlib, importlib.metadata as md, importlib.util, pkgutil, sys
import torch
print("python", sys.version.split()[0], "| torch", torch.__version__, "| cuda", torch.version.cuda,
      "| available", torch.cuda.is_available(), "|", torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu")
print("bf16 supported:", torch.cuda.is_available() and torch.cuda.is_bf16_supported())
for name in ("lightning", "pytorch-lightning", "torchmetrics", "torchvision", "numpy", "scipy", "einops", "einx",
             "typing_extensions", "jsonargparse", "vector-quantize-pytorch", "albumentations", "pydantic", "opencv-python-headless",
             "scikit-learn", "scikit-image", "timm", "sympy", "flatbuffers", "tflite", "moderngl", "nvdiffrast", "wandb"):
    try:
        print(f"  {name} {md.version(name)}")
    except md.PackageNotFoundError:
        print(f"  {name} MISSING")
failed = []
for package in ("game", "models", "losses", "datamodules", "lightning_modules", "callbacks", "eval", "bench"):
    modules = [package] + [m.name for m in pkgutil.walk_packages(importlib.import_module(package).__path__, package + ".")
                           if not m.name.endswith("__main__")]
    for module in modules:
        try:
            importlib.import_module(module)
        except Exception as error:  # every failure, not only the first
            failed.append(module)
            print(f"IMPORT FAILED {module}: {type(error).__name__}: {error}")
from lightning.pytorch.cli import _JSONARGPARSE_SIGNATURES_AVAILABLE
from game.render import render_backends
print("LightningCLI usable:", bool(_JSONARGPARSE_SIGNATURES_AVAILABLE), "| render backends:", render_backends())
print("imports failed:", failed or "none")
sys.exit(1 if failed else 0)
EOF

# 2. The gpu-marked tests (nvdiffrast is not on PyPI: its test skips unless the image has it).
step pytest_gpu 90 "$PY" -m pytest -m gpu -q -p no:cacheprovider

# 3-4. Speed: our E+R against F2P and the card's own matmul/conv rates (torch.compile at the end: slowest,
# likeliest to fail); paper-scale imitator training.
step bench_inference 150 "$PY" -m bench.inference --device "$DEVICE" "${INFER[@]}" --out "$OUT/inference_gpu.json"
step bench_training 90 "$PY" -m bench.training --device "$DEVICE" "${TRAIN[@]}" --out "$OUT/training_gpu.json"

# 5. Real fits through the CLI: DDP (nccl on GPU, gloo on CPU) on one device, bf16-mixed, demo data (carried).
FIT=(--config experiments/trainer/ddp.yaml --config experiments/trainer/bf16.yaml
     --trainer.accelerator "$ACCEL" --trainer.devices 1 --trainer.max_steps "$FIT_STEPS"
     --trainer.val_check_interval "$VAL_EVERY" --trainer.limit_val_batches 2 --trainer.log_every_n_steps 5
     --trainer.enable_progress_bar false --data.init_args.num_workers "$WORKERS" --run.wandb false --run.root "$RUNS")
step fit_imitator 120 "$PY" -m lightning_modules.cli fit --config experiments/demo/imitator.yaml "${FIT[@]}" \
    --run.name gpu-imitator
# The regression's grid draws engine renders, which need EGL: no callbacks here, the engine is step 5b.
step fit_main 150 "$PY" -m lightning_modules.cli fit --config experiments/demo/main.yaml "${FIT[@]}" \
    --trainer.callbacks '[]' --model.init_args.imitator_checkpoint "$RUNS/gpu-imitator" --run.name gpu-main

# 5b. The game engine through EGL: which driver draws, and how fast (the regression grid and dataset generation need it).
step engine_render 60 "$PY" - "$OUT/engine_gpu.json" "$RENDER_COUNT" "$RENDER_SIZE" <<'EOF'
import json, sys, time
import numpy as np
from game.render import _thread_context, render_backends
from game.engine import engine_renders
out, count, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
report = {"backends": render_backends()}
context, _ = _thread_context()
report.update({key: context.info.get(key) for key in ("GL_VENDOR", "GL_RENDERER", "GL_VERSION")})
parameters = np.random.default_rng(0).uniform(-2.5, 2.5, (count + 1, 267)).astype(np.float32)
engine_renders(parameters[:1], size)  # builds the head and the GL resources
began = time.perf_counter()
images = engine_renders(parameters[1:], size)
report.update(size=size, count=count, images_per_second=count / (time.perf_counter() - began),
              mean_pixel=float(images.mean()))
print(json.dumps(report, indent=2))
open(out, "w").write(json.dumps(report, indent=2) + "\n")
EOF

step bench_inference_compile 150 "$PY" -m bench.inference --device "$DEVICE" "${COMPILE[@]}" \
    --out "$OUT/inference_compile_gpu.json"

# 6. Collect: metrics of both fits, and the summary.
for run in imitator main; do
    metrics=$(ls -d "$RUNS"/gpu-$run/version_*/metrics.csv 2>/dev/null | sort -V | tail -1)
    [ -n "$metrics" ] && cp "$metrics" "$OUT/fit_${run}_metrics.csv"
done
timeout 60 "$PY" - "$STEPS" "$OUT" <<'EOF' 2>&1 | tee -a "$LOG"
import csv, json, sys
from pathlib import Path
steps_file, out = sys.argv[1], Path(sys.argv[2])
summary = {"steps": [{"name": n, "rc": int(rc) if rc.isdigit() else rc, "seconds": int(s)}
                     for n, rc, s in csv.reader(open(steps_file), delimiter="\t")]}
def read(name):
    try:
        return json.loads((out / name).read_text())
    except (OSError, ValueError):
        return None
runs = [report for name in ("inference_gpu.json", "inference_compile_gpu.json") if (report := read(name))]
if runs:
    summary["device"] = runs[0]["device"]
    rows = [r for report in runs for r in report["rows"]]
    summary["inference"] = [{k: r[k] for k in ("size", "batch", "variant")} | {
        "images_per_second": round(r["ours"]["images_per_second"], 1), "flop_utilisation": round(r["flop_utilisation"], 3),
        "conv_utilisation": round(r["conv_utilisation"], 3), "speedup_vs_f2p": round(r["speedup_vs_f2p"])} for r in rows]
    summary["inference_errors"] = [e for report in runs for e in report["errors"]]
    best = max((r["ours"]["images_per_second"] for r in rows if r["size"] == 256 and r["variant"] != "fp32"), default=None)
    summary["goal_256px_bf16"] = {"goal": 20000, "best": best, "met": best is not None and best >= 20000}
if training := read("training_gpu.json"):
    summary["training"] = [{k: r[k] for k in ("variant", "images_per_second", "seconds_per_step", "peak_memory_bytes", "flop_utilisation")}
                           for r in training["rows"]]
    summary["training_errors"] = training["errors"]
summary["engine"] = read("engine_gpu.json")
for run in ("imitator", "main"):
    path = out / f"fit_{run}_metrics.csv"
    if path.is_file():
        rows = list(csv.DictReader(open(path)))
        last = {k: v for row in rows for k, v in row.items() if v}  # the latest value of each column
        summary[f"fit_{run}"] = {"rows": len(rows), "last": last}
print(json.dumps(summary, indent=2))
(out / "gpu_results.json").write_text(json.dumps(summary, indent=2) + "\n")
EOF
# Without Python the summary still says which steps ran and how they ended.
steps_json "$OUT/gpu_results.json"
echo "results in $OUT: $(ls "$OUT" | tr '\n' ' ')"
