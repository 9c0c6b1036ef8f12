#!/usr/bin/env bash
# hardmatch on a lent GPU machine: one entry point, one sub-command per device call (docs/gpu.md).
#
# HERE (the CPU machine, repository root), before a device call, once per kind of call:
#   bash tools/gpu.sh prepare bench|test|eval   # wheels the device lacks -> .whl/, the data the step reads -> .gpu/shared/
#   bash tools/gpu.sh prepare train             # training images re-encoded (tools/gpu_bundle.py) -> .gpu/shared/
# ON THE GPU MACHINE, through the device tool (command, carry):
#   bash tools/gpu.sh bench                     # [".whl", ".gpu"]  speed tables (benchmarks/speed.py --device cuda), ~5 min
#   bash tools/gpu.sh test                      # [".whl", ".gpu"]  the test suite on CUDA (device=auto -> torch path), ~3 min
#   bash tools/gpu.sh eval                      # [".whl", ".gpu"]  dev sets, opencv path vs torch path
#   bash tools/gpu.sh check                     # [".gpu"]  300 training steps (throughput), sync count, tests/test_train.py
#   bash tools/gpu.sh main                      # [".gpu"]  the next default model: >= 10M pairs, bsd100 held out, ~9 min
#   bash tools/gpu.sh ablation NAME...          # [".gpu"]  short runs of data options, equal pairs each (<= 4 names a call)
# Any sub-command: --dry-run (first argument) checks its inputs and prints the commands instead of running them.
#
# Everything a call writes goes to $OUT (the device tool's output folder; runs/gpu when unset), at most 8 files:
#   bench: machine.txt RESULTS.md speed_8000.txt speed_2048.txt     test: machine.txt pytest_cuda.txt
#   eval: machine.txt eval-NAME/summary.{md,json}                    check: machine.txt check/*
#   main: machine.txt main/{model.pth,checkpoint.pth,log.csv,summary.json,train.log}
#   ablation: machine.txt abl-NAME.pth per run, ablation-logs.tar.gz (each run's log.csv, summary.json, train.log)
# Knobs (environment): STEPS (main, 12000 = 12.3M pairs at batch 1024), MINUTES (main time budget, 7.5: the lr
# decays over whichever of STEPS/MINUTES ends first), BATCH (1024), WORKERS (auto), VAL_PAIRS (4000),
# ABL_STEPS (1500 = 1.5M pairs per ablation run), ABL_TIMEOUT (150 s per ablation run), EXTRA (more
# `hardmatch train` options for every run), DEVICE (cuda; DEVICE=cpu BATCH=16 STEPS=3 smoke-tests training
# without a GPU), PYTHON (python3), OUT, HARDMATCH_SHARED (prepare: where the dev data is, ../shared), GPU_DIR
# (.gpu; another folder only for trying the script here: the device tool carries ignored folders of the checkout),
# WHEELS (prepare: the packages fetched as wheels; default kornia, kornia_rs, pydegensac).
set -euo pipefail

DRY=0
if [ "${1:-}" = "--dry-run" ]; then DRY=1; shift; fi
MODE=${1:-}
shift || true
PY=${PYTHON:-python3}
GPU=${GPU_DIR:-.gpu}                      # carried folder (git-ignored); the device sees GPU/shared as HARDMATCH_SHARED
SHARED_HERE=${HARDMATCH_SHARED:-../shared}
WHEELS=${WHEELS:-"kornia==0.9.0 kornia_rs==0.2.0 pydegensac==0.3.0"}
BATCH=${BATCH:-1024}
DEVICE=${DEVICE:-cuda}

die() { echo "gpu.sh: $1" >&2; exit "${2:-2}"; }
usage() { sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
x() {  # run a command, or print it with --dry-run
  if [ "$DRY" = 1 ]; then printf '+'; printf ' %q' "$@"; printf '\n'; else "$@"; fi
}

# ---------------------------------------------------------------- here: preparation
prepare() {
  local step=${1:-}
  case "$step" in bench|test|eval|train) ;; *) die "usage: gpu.sh prepare bench|test|eval|train" ;; esac
  [ -d "$SHARED_HERE/data" ] || die "$SHARED_HERE/data missing (set HARDMATCH_SHARED to the dev data)" 5
  x rm -rf "$GPU"
  x mkdir -p "$GPU/shared/data"
  if [ "$step" = train ]; then
    # training needs neither kornia nor pydegensac: carry only .gpu (the images take about 40 MiB)
    x "$PY" tools/gpu_bundle.py --shared "$SHARED_HERE" --out "$GPU/shared/data/train-images"
    [ ! -d .whl ] || echo "gpu.sh: note: carry only [\"$GPU\"] for training calls (.whl would pass the 64 MiB limit)"
  else
    if ! ls .whl/*.whl >/dev/null 2>&1; then
      # shellcheck disable=SC2086
      x "$PY" -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
        -d .whl $WHEELS
    fi
    x mkdir -p "$GPU/shared/weights" "$GPU/shared/data/homogr"
    x cp "$SHARED_HERE/weights/AffNet.pth" "$SHARED_HERE/weights/OriNet.pth" "$GPU/shared/weights/"
    x cp -r "$SHARED_HERE/data/oxford" "$GPU/shared/data/"
    case "$step" in
      bench) x cp "$SHARED_HERE/data/homogr/BostonA.jpg" "$SHARED_HERE/data/homogr/BostonB.jpg" "$GPU/shared/data/homogr/" ;;
      test)  x cp -r "$SHARED_HERE/data/homogr" "$SHARED_HERE/data/hpatches-sample" "$GPU/shared/data/" ;;
      eval)  x cp -r "$SHARED_HERE/data/homogr" "$SHARED_HERE/data/kusvod2-dev" "$GPU/shared/data/" ;;
    esac
  fi
  [ "$DRY" = 1 ] || du -shc $( [ "$step" = train ] || echo .whl ) "$GPU"
  local carry='[".whl", ".gpu"]'
  [ "$step" = train ] && carry='[".gpu"]'
  echo "next: run(command=\"bash tools/gpu.sh ${step/train/check}\", carry=$carry)  (all carried + tracked files < 64 MiB)"
}

# ---------------------------------------------------------------- on the device: common set-up
setup_device() {
  OUT=${OUT:-runs/gpu}
  mkdir -p "$OUT"
  export PYTHONUNBUFFERED=1
  export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
  if ls .whl/*.whl >/dev/null 2>&1; then
    x "$PY" -m pip install -q --no-index --no-deps --target /tmp/site .whl/*.whl
    export PYTHONPATH="/tmp/site:$PYTHONPATH"
  fi
  [ -d "$GPU/shared" ] || die "$GPU/shared missing: run 'bash tools/gpu.sh prepare STEP' here and carry $GPU" 5
  HARDMATCH_SHARED=$(cd "$GPU/shared" && pwd)
  export HARDMATCH_SHARED
  export TORCH_HOME=/tmp/torch_home
  if [ -d "$HARDMATCH_SHARED/weights" ]; then
    x mkdir -p "$TORCH_HOME/hub/checkpoints"
    x cp "$HARDMATCH_SHARED"/weights/*.pth "$TORCH_HOME/hub/checkpoints/"
  fi
  DATA=$HARDMATCH_SHARED/data
  [ "$DRY" = 1 ] && return 0
  { nvidia-smi -L 2>/dev/null || echo "no nvidia-smi"
    "$PY" - <<'EOF'
import os, torch
print("torch", torch.__version__, "cuda", torch.cuda.is_available(),
      torch.cuda.get_device_name(0) if torch.cuda.is_available() else "-", "cores", len(os.sched_getaffinity(0)))
try:
    import kornia
    print("kornia", kornia.__version__)
except ImportError:
    print("kornia not installed")
EOF
  } | tee "$OUT/machine.txt"
}

need_data() { for d in "$@"; do [ -e "$DATA/$d" ] || die "$DATA/$d missing: run 'bash tools/gpu.sh prepare $MODE' here" 5; done; }

# ---------------------------------------------------------------- on the device: measurements and tests
bench() {
  need_data homogr/BostonA.jpg homogr/BostonB.jpg oxford/graf/img1.png
  x cp benchmarks/RESULTS.md "$OUT/RESULTS.md"
  local common=(--device cuda --image "$DATA/homogr/BostonA.jpg" --image2 "$DATA/homogr/BostonB.jpg"
                --graf1 "$DATA/oxford/graf/img1.png" --graf5 "$DATA/oxford/graf/img5.png"
                --weights-dir "$HARDMATCH_SHARED/weights" --write-results "$OUT/RESULTS.md")
  x timeout 280 "$PY" benchmarks/speed.py "${common[@]}" --nfeatures 8000 --repeat 10 2>&1 | tee "$OUT/speed_8000.txt"
  x timeout 200 "$PY" benchmarks/speed.py "${common[@]}" --nfeatures 2048 --repeat 10 --no-pairs \
      --hardnet-batches 32768 2>&1 | tee "$OUT/speed_2048.txt"
  echo "copy the speed-table:cuda:* blocks of \$OUT/RESULTS.md into benchmarks/RESULTS.md (\"Speed on GPU\")"
}

run_tests() {
  need_data homogr hpatches-sample
  # device=auto means CUDA here: the default pipelines of the whole suite take the torch path
  x timeout 540 "$PY" -m pytest -q -x -p no:cacheprovider -n 4 2>&1 | tail -40 | tee "$OUT/pytest_cuda.txt"
}

run_eval() {
  need_data oxford/graf homogr kusvod2-dev
  local ds name
  for ds in oxford/graf homogr kusvod2-dev; do
    name=$(basename "$ds")
    x timeout 170 "$PY" -m hardmatch.cli eval "$DATA/$ds" --out "$OUT/eval-$name" \
      --pipeline default:path=opencv --pipeline default:path=torch 2>&1 | tail -8 || true
    x rm -f "$OUT/eval-$name"/results.jsonl "$OUT/eval-$name"/results.csv "$OUT/eval-$name/summary.png"  # $OUT: <= 8 files
  done
}

# ---------------------------------------------------------------- on the device: training
declare -A ABLATIONS=(  # name -> --synth options (the baseline is the current synthetic data)
  [baseline]=""
  [shading]="--synth shading_prob=0.5"
  [jpeg]="--synth jpeg_prob=0.3"
  [occlusion]="--synth occlusion_prob=0.3"
  [hessaff]="--synth detector=dog+hessaff"
  [scales]="--synth scales=1,0.5"
  [all]="--synth shading_prob=0.5 --synth jpeg_prob=0.3 --synth occlusion_prob=0.3 --synth detector=dog+hessaff --synth scales=1,0.5"
)

train_setup() {
  local images=$DATA/train-images d
  for d in urban100 sunhays80 bsd100; do
    [ -d "$images/$d" ] || die "$images/$d missing: run 'bash tools/gpu.sh prepare train' here and carry $GPU" 5
  done
  TRAIN_DATA=(--images "$images/urban100" --images "$images/sunhays80" --val-images "$images/bsd100")
  WORKER_OPT=()
  [ -z "${WORKERS:-}" ] || WORKER_OPT=(--workers "$WORKERS")
}

train_check() {
  # a few hundred steps: the log's pairs/s column is the throughput to expect (main is sized for ~30k pairs/s)
  # shellcheck disable=SC2086
  x "$PY" -m hardmatch.cli train "${TRAIN_DATA[@]}" --device "$DEVICE" --batch-size "$BATCH" --steps "${STEPS:-300}" \
      --val-every 300 --checkpoint-every 300 --no-baselines "${WORKER_OPT[@]}" ${EXTRA:-} --out "$OUT/check" 2>&1 \
      | tr '\r' '\n' | tail -n 25
  # host-device synchronisations: expected only at log points (every 20 steps), validation and checkpoints
  HARDMATCH_SYNC_DEBUG=1 x "$PY" -W always::UserWarning -m hardmatch.cli train "${TRAIN_DATA[@]}" --device "$DEVICE" \
      --batch-size "$BATCH" --steps 100 --val-every 1000 --checkpoint-every 1000 --no-baselines --val-pairs 500 \
      "${WORKER_OPT[@]}" --out "$OUT/sync" > "$OUT/sync.log" 2>&1 || true
  echo "synchronising CUDA calls in 100 steps: $(grep -c 'synchronizing CUDA operation' "$OUT/sync.log" || true)"
  grep 'synchronizing CUDA operation' "$OUT/sync.log" | sed 's/: UserWarning.*//' | sort | uniq -c | head -n 20 || true
  x rm -rf "$OUT/sync" "$OUT/sync.log"
  x "$PY" -m pytest -q -x -p no:cacheprovider tests/test_train.py 2>&1 | tail -n 5
}

train_main() {
  # shellcheck disable=SC2086
  x "$PY" -m hardmatch.cli train "${TRAIN_DATA[@]}" --device "$DEVICE" --batch-size "$BATCH" --steps "${STEPS:-12000}" \
      --minutes "${MINUTES:-7.5}" --val-pairs "${VAL_PAIRS:-4000}" --val-every 1000 --checkpoint-every 500 \
      "${WORKER_OPT[@]}" ${EXTRA:-} --out "$OUT/main" 2>&1 | tr '\r' '\n' | tee "$OUT/main.log.tmp" | grep -v '^\[' || true
  [ "$DRY" = 1 ] && return 0
  mkdir -p "$OUT/main" && mv "$OUT/main.log.tmp" "$OUT/main/train.log"
  [ -f "$OUT/main/summary.json" ] || die "training failed (see main/train.log)" 1
  cat "$OUT/main/summary.json"
}

train_ablation() {
  [ $# -gt 0 ] || set -- baseline shading jpeg
  local name run
  mkdir -p "$OUT/ablation"
  for name in "$@"; do
    run="$OUT/ablation/$name"
    mkdir -p "$run"
    echo "== $name: ${ABLATIONS[$name]:-(the current data)}"
    # equal pairs per run (not equal time): a slower data option is judged on the same data volume
    # shellcheck disable=SC2086
    x timeout "${ABL_TIMEOUT:-150}" "$PY" -m hardmatch.cli train "${TRAIN_DATA[@]}" --device "$DEVICE" \
        --batch-size "$BATCH" --steps "${ABL_STEPS:-1500}" --val-every 500 --checkpoint-every 500 --no-baselines \
        "${WORKER_OPT[@]}" ${ABLATIONS[$name]} ${EXTRA:-} --out "$run" 2>&1 | tr '\r' '\n' > "$run/train.log" || true
    [ "$DRY" = 1 ] && continue
    grep -E "validation|training on" "$run/train.log" || true
    if [ -f "$run/model.pth" ]; then cp "$run/model.pth" "$OUT/abl-$name.pth"; else echo "$name: no model (timeout?)"; fi
    if [ -f "$run/summary.json" ]; then cat "$run/summary.json"; echo; fi
    rm -f "$run/model.pth" "$run/checkpoint.pth"
  done
  x tar -czf "$OUT/ablation-logs.tar.gz" -C "$OUT" ablation
  x rm -rf "$OUT/ablation"
}

case "$MODE" in
  prepare) prepare "$@" ;;
  bench) setup_device; bench ;;
  test) setup_device; run_tests ;;
  eval) setup_device; run_eval ;;
  check) setup_device; train_setup; train_check ;;
  main) setup_device; train_setup; train_main ;;
  ablation)
    for name in "$@"; do [ -n "${ABLATIONS[$name]+x}" ] || die "unknown ablation $name (${!ABLATIONS[*]})"; done
    setup_device; train_setup; train_ablation "$@" ;;
  *) usage ;;
esac
