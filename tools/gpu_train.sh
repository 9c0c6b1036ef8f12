#!/usr/bin/env bash
# Train HardNet on the GPU machine in one device call (see tools/GPU_TRAINING.md for the whole sequence).
#
#   bash tools/gpu_train.sh check                  # 1-step smoke run + throughput probe (~1-2 min)
#   bash tools/gpu_train.sh main                   # the next default model: >= 10M pairs, bsd100 held out
#   bash tools/gpu_train.sh ablation NAME...       # short runs of the data options, equal pairs each
#
# Needs the bundle made by `python tools/gpu_bundle.py` in .gpu/ (carried: carry=[".gpu"]).
# Writes to $OUT (the device tool's output folder; runs/gpu when unset), at most 8 files per call:
#   main:     main/model.pth main/checkpoint.pth main/log.csv main/summary.json main/train.log
#   ablation: abl-NAME.pth per run + ablation-logs.tar.gz (each run's log.csv, summary.json, train.log)
# Knobs (environment): STEPS (main, default 12000 = 12.3M pairs at batch 1024), MINUTES (main time budget,
# default 7.5: the lr decays over whichever of STEPS/MINUTES ends first), BATCH (1024), WORKERS (auto),
# ABL_STEPS (ablation steps per run, default 1500 = 1.5M pairs), ABL_TIMEOUT (seconds per ablation run, 150),
# EXTRA (more `hardmatch train` options for every run), DEVICE (cuda), VAL_PAIRS (4000).
set -euo pipefail

MODE=${1:-}
shift || true
OUT=${OUT:-runs/gpu}
BUNDLE=${BUNDLE:-.gpu}
BATCH=${BATCH:-1024}
DEVICE=${DEVICE:-cuda}  # DEVICE=cpu BATCH=16 STEPS=3 ... runs the script as a smoke test without a GPU
export PYTHONUNBUFFERED=1
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
PY=${PYTHON:-python3}

# ablation name -> --synth options (the baseline is the current synthetic data)
declare -A ABLATIONS=(
  [baseline]=""
  [shading]="--synth shading_prob=0.5"
  [jpeg]="--synth jpeg_prob=0.3"
  [occlusion]="--synth occlusion_prob=0.3"
  [hessaff]="--synth detector=dog+hessaff"
  [scales]="--synth scales=1,0.5"
  [all]="--synth shading_prob=0.5 --synth jpeg_prob=0.3 --synth occlusion_prob=0.3 --synth detector=dog+hessaff --synth scales=1,0.5"
)

for d in "$BUNDLE/train/urban100" "$BUNDLE/train/sunhays80" "$BUNDLE/val/bsd100"; do
  [ -d "$d" ] || { echo "gpu_train: $d missing: run python tools/gpu_bundle.py here and carry $BUNDLE" >&2; exit 5; }
done
mkdir -p "$OUT"
DATA=(--images "$BUNDLE/train/urban100" --images "$BUNDLE/train/sunhays80" --val-images "$BUNDLE/val/bsd100")
WORKER_OPT=()
[ -n "${WORKERS:-}" ] && WORKER_OPT=(--workers "$WORKERS")

info() {
  $PY - <<'EOF'
import os, torch
print("torch", torch.__version__, "cuda", torch.cuda.is_available(),
      torch.cuda.get_device_name(0) if torch.cuda.is_available() else "-", "cores", len(os.sched_getaffinity(0)))
EOF
}

case "$MODE" in
  check)
    info
    # a few hundred steps: the log's pairs/s column is the throughput to expect; the test suite's train tests too
    $PY -m hardmatch.cli train "${DATA[@]}" --device "$DEVICE" --batch-size "$BATCH" --steps 300 --val-every 300 \
        --checkpoint-every 300 --no-baselines "${WORKER_OPT[@]}" ${EXTRA:-} --out "$OUT/check" 2>&1 | tr '\r' '\n' \
        | tail -n 25
    # host-device synchronisations: expected only at log points (every 20 steps), validation and checkpoints
    HARDMATCH_SYNC_DEBUG=1 $PY -W always::UserWarning -m hardmatch.cli train "${DATA[@]}" --device "$DEVICE" \
        --batch-size "$BATCH" --steps 100 --val-every 1000 --checkpoint-every 1000 --no-baselines --val-pairs 500 \
        "${WORKER_OPT[@]}" --out "$OUT/sync" > "$OUT/sync.log" 2>&1 || true
    echo "synchronising CUDA calls in 100 steps: $(grep -c 'synchronizing CUDA operation' "$OUT/sync.log" || true)"
    grep 'synchronizing CUDA operation' "$OUT/sync.log" | sed 's/: UserWarning.*//' | sort | uniq -c | head -n 20
    rm -rf "$OUT/sync" "$OUT/sync.log"
    $PY -m pytest -q -x tests/test_train.py 2>&1 | tail -n 5
    ;;
  main)
    info
    $PY -m hardmatch.cli train "${DATA[@]}" --device "$DEVICE" --batch-size "$BATCH" --steps "${STEPS:-12000}" \
        --minutes "${MINUTES:-7.5}" --val-pairs "${VAL_PAIRS:-4000}" --val-every 1000 --checkpoint-every 500 "${WORKER_OPT[@]}" \
        ${EXTRA:-} --out "$OUT/main" 2>&1 | tr '\r' '\n' | tee "$OUT/main.log.tmp" | grep -v '^\[' || true
    mv "$OUT/main.log.tmp" "$OUT/main/train.log"
    [ -f "$OUT/main/summary.json" ] || { echo "gpu_train: training failed (see train.log)" >&2; exit 1; }
    cat "$OUT/main/summary.json"
    ;;
  ablation)
    [ $# -gt 0 ] || set -- baseline shading jpeg
    info
    mkdir -p "$OUT/ablation"
    for name in "$@"; do
      [ -n "${ABLATIONS[$name]+x}" ] || { echo "gpu_train: unknown ablation $name (${!ABLATIONS[*]})" >&2; exit 2; }
      run="$OUT/ablation/$name"
      mkdir -p "$run"
      echo "== $name: ${ABLATIONS[$name]:-(the current data)}"
      # equal pairs per run (not equal time): a slower data option is judged on the same data volume
      timeout "${ABL_TIMEOUT:-150}" $PY -m hardmatch.cli train "${DATA[@]}" --device "$DEVICE" --batch-size "$BATCH" \
          --steps "${ABL_STEPS:-1500}" --val-every 500 --checkpoint-every 500 --no-baselines "${WORKER_OPT[@]}" \
          ${ABLATIONS[$name]} ${EXTRA:-} --out "$run" 2>&1 | tr '\r' '\n' > "$run/train.log" || true
      grep -E "validation|training on" "$run/train.log" || true
      if [ -f "$run/model.pth" ]; then cp "$run/model.pth" "$OUT/abl-$name.pth"; else echo "$name: no model (timeout?)"; fi
      [ -f "$run/summary.json" ] && cat "$run/summary.json" && echo
      rm -f "$run/model.pth" "$run/checkpoint.pth"
    done
    tar -czf "$OUT/ablation-logs.tar.gz" -C "$OUT" ablation && rm -rf "$OUT/ablation"
    ;;
  *)
    echo "usage: bash tools/gpu_train.sh check|main|ablation [NAME...]" >&2
    exit 2
    ;;
esac
