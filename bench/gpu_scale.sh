#!/usr/bin/env bash
# Does the paper's method scale? One call on a lent GPU machine (<= 6 minutes, nothing downloaded): render the
# paper's 256 px screenshot set and a synthetic photo set on the GPU's EGL, fit the paper's imitator
# (experiments/imitator.yaml) and the paper's regression (experiments/main.yaml, the synthetic photos standing in
# for CelebA) with bf16-mixed for a fixed wall-clock budget each, and score the regression on the held-out
# likeness benchmark (bench/likeness.py) beside the truth and the neutral face.
# Results in $OUT: scale_results.json (steps, exit codes, images seen, likeness rows), gpu_log.txt,
# likeness_scale.json/.md, fit_{imitator,main}_metrics.csv.
#
# Prepare here once as for bench/gpu_check.sh (`bash bench/gpu_check.sh prepare`) and carry .whl .gpucache .gl.
# CPU rehearsal at toy sizes (checks every step and override, ~6 min on a loaded 2-core machine):
#   DEVICE=cpu PY=.venv/bin/python OUT=/tmp/scaleout RUNS=/tmp/scaleruns DATA=/tmp/scaledata bash bench/gpu_scale.sh
set -u -o pipefail
: "${OUT:?set OUT to the results folder}"
# The CPU rehearsal shares a loaded 2-core machine: its steps get 3x the time (T), and 20 minutes in all.
if [ "${DEVICE:-cuda}" = cuda ]; then T=1 BUDGET=${BUDGET:-345}; else T=3 BUDGET=${BUDGET:-1200}; fi
source "$(dirname "$0")/gpu_lib.sh"
DATA=${DATA:-data}

if [ "$DEVICE" = cuda ]; then
    ACCEL=gpu SIZE=256 GAME=20000 PEOPLE=2000 WORKERS=8 IMITATOR_SECONDS=60 MAIN_SECONDS=90 IDENTITIES=200 PAIRS=200
    IMITATOR_BATCH=128 IDENTITIES_PER_BATCH=16
else  # toy sizes: this only checks that every step and override runs
    ACCEL=cpu SIZE=64 GAME=128 PEOPLE=100 WORKERS=1 IMITATOR_SECONDS=15 MAIN_SECONDS=20 IDENTITIES=20 PAIRS=12
    IMITATOR_BATCH=8 IDENTITIES_PER_BATCH=4
fi
GAME_SET=$DATA/game-game-$SIZE-$GAME PHOTO_SET=$DATA/photo-$SIZE-$PEOPLE
GAME_GENERATE="{count: $GAME, size: $SIZE, seed: 0}"
PHOTO_GENERATE="{count: $((PEOPLE * 4)), size: $SIZE, seed: 1, renders_per_identity: 4}"

[ "$DEVICE" = cuda ] && step nvidia_smi $((30 * T)) nvidia-smi

# 1. Data on this machine's renderer: the paper's target set (a fifth of its 100K) and photos of other people.
step render_game $((75 * T)) "$PY" -m game generate --out "$GAME_SET" --count "$GAME" --size "$SIZE" --style game --seed 0 \
    --workers "$WORKERS"
step render_photos $((45 * T)) "$PY" -m game generate --out "$PHOTO_SET" --count $((PEOPLE * 4)) --size "$SIZE" --style photo \
    --seed 1 --renders-per-identity 4 --workers "$WORKERS"

# 2. The paper's configs, each for a fixed wall-clock budget of fitting (the step count it reaches is the measurement;
# the step's limit leaves ~35-50 s for start-up, the last validation and the checkpoint). Sizes are the paper's on
# CUDA; the CPU rehearsal shrinks the networks to its toy size.
COMMON=(--config experiments/trainer/bf16.yaml --trainer.accelerator "$ACCEL" --trainer.devices 1
        --trainer.max_epochs 1000 --trainer.check_val_every_n_epoch 1 --trainer.limit_val_batches 4
        --trainer.log_every_n_steps 10 --trainer.enable_progress_bar false --trainer.callbacks '[]'
        --data.init_args.target_root "$GAME_SET" --data.init_args.generate "$GAME_GENERATE"
        --data.init_args.num_workers "$WORKERS" --run.wandb false --run.root "$RUNS")
step fit_imitator $((110 * T)) "$PY" -m lightning_modules.cli fit --config experiments/imitator.yaml "${COMMON[@]}" \
    --trainer.max_time "00:00:00:$IMITATOR_SECONDS" --data.init_args.batch_size "$IMITATOR_BATCH" \
    --data.init_args.image_size "$SIZE" --model.init_args.net.init_args.image_size "$SIZE" --run.name scale-imitator
SOURCE="{kind: synthetic, root: $PHOTO_SET, identities_per_batch: $IDENTITIES_PER_BATCH, photos_per_identity: 2,
 generate: $PHOTO_GENERATE}"
step fit_main $((150 * T)) "$PY" -m lightning_modules.cli fit --config experiments/main.yaml "${COMMON[@]}" \
    --trainer.max_time "00:00:00:$MAIN_SECONDS" --data.init_args.batch_size $((IDENTITIES_PER_BATCH * 2)) \
    --data.init_args.image_size "$SIZE" --model.init_args.encoder.init_args.image_size "$SIZE" \
    --model.init_args.regressor.init_args.image_size "$SIZE" \
    --data.init_args.source "$SOURCE" --model.init_args.imitator_checkpoint "$RUNS/scale-imitator" --run.name scale-main

# 3. The likeness benchmark on held-out people (its own seeds), the paper's regression against truth and neutral.
main_ckpt=$(ls -t "$RUNS"/scale-main/version_*/checkpoints/last.ckpt 2>/dev/null | head -1)
if [ -n "$main_ckpt" ]; then
    step likeness $((75 * T)) "$PY" -m bench.likeness --ckpt "paper=$main_ckpt" --identities "$IDENTITIES" --pairs-per-fold "$PAIRS" --size "$SIZE" \
        --device "$DEVICE" --workers "$WORKERS" \
        --root "$DATA/likeness-$SIZE-$IDENTITIES" --resamples 500 --out "$OUT/likeness_scale.json"
else
    echo "=== likeness: skipped, fit_main left no checkpoint" | tee -a "$LOG"
    printf 'likeness\tskipped\t0\n' >>"$STEPS"
fi

# 4. Collect: how far each fit got, and the likeness rows.
for run in imitator main; do
    metrics=$(ls -d "$RUNS"/scale-$run/version_*/metrics.csv 2>/dev/null | sort -V | tail -1)
    [ -n "$metrics" ] && cp "$metrics" "$OUT/fit_${run}_metrics.csv"
done
timeout 60 "$PY" - "$STEPS" "$OUT" "$IMITATOR_BATCH" $((IDENTITIES_PER_BATCH * 2)) "$SIZE" <<'EOF' 2>&1 | tee -a "$LOG"
import csv, json, sys
from pathlib import Path
steps_file, out = sys.argv[1], Path(sys.argv[2])
batches = {"imitator": int(sys.argv[3]), "main": int(sys.argv[4])}
summary = {"size": int(sys.argv[5]), "steps": [{"name": n, "rc": int(rc) if rc.isdigit() else rc, "seconds": int(s)}
                                               for n, rc, s in csv.reader(open(steps_file), delimiter="\t")]}
for run, batch in batches.items():
    path = out / f"fit_{run}_metrics.csv"
    if path.is_file():
        rows = list(csv.DictReader(open(path)))
        last = {k: v for row in rows for k, v in row.items() if v}  # the latest value of each column
        step = int(float(last.get("step", 0)))
        summary[f"fit_{run}"] = {"optimizer_steps": step, "screenshots_seen": step * batch, "last": last}
try:
    likeness = json.loads((out / "likeness_scale.json").read_text())
    summary["likeness"] = {"benchmark": likeness["benchmark"], "rows": likeness["rows"], "intervals": likeness["intervals"]}
except (OSError, ValueError):
    summary["likeness"] = None
print(json.dumps(summary, indent=2))
(out / "scale_results.json").write_text(json.dumps(summary, indent=2) + "\n")
EOF
# Without Python the summary still says which steps ran and how they ended.
steps_json "$OUT/scale_results.json"
echo "results in $OUT: $(ls "$OUT" | tr '\n' ' ')"
