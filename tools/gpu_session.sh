#!/usr/bin/env bash
# Run ON THE GPU MACHINE through the device tool, each after `bash tools/gpu_prepare.sh STEP` here:
#   run(command="bash tools/gpu_session.sh bench", carry=[".whl", ".gpu"])   # speed tables, ~5 min
#   run(command="bash tools/gpu_session.sh test",  carry=[".whl", ".gpu"])   # test suite on CUDA, ~3 min
#   run(command="bash tools/gpu_session.sh eval",  carry=[".whl", ".gpu"])   # dev sets, torch vs opencv path
# Each step writes what it measured under $OUT (RESULTS.md with the new tables, logs, eval summaries).
set -uo pipefail
step=${1:-bench}
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/*.whl
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1
export HARDMATCH_SHARED=$PWD/.gpu/shared TORCH_HOME=/tmp/torch_home
mkdir -p "$TORCH_HOME/hub/checkpoints" && cp "$HARDMATCH_SHARED"/weights/*.pth "$TORCH_HOME/hub/checkpoints/"
DATA=$HARDMATCH_SHARED/data
nvidia-smi -L | tee "$OUT/machine.txt"
python3 -c "import torch, kornia; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), 'kornia', kornia.__version__)" \
  | tee -a "$OUT/machine.txt"
case "$step" in
  bench)
    cp benchmarks/RESULTS.md "$OUT/RESULTS.md"
    common=(--device cuda --image "$DATA/homogr/BostonA.jpg" --image2 "$DATA/homogr/BostonB.jpg"
            --graf1 "$DATA/oxford/graf/img1.png" --graf5 "$DATA/oxford/graf/img5.png"
            --weights-dir "$HARDMATCH_SHARED/weights" --write-results "$OUT/RESULTS.md")
    timeout 280 python3 benchmarks/speed.py "${common[@]}" --nfeatures 8000 --repeat 10 2>&1 | tee "$OUT/speed_8000.txt"
    timeout 200 python3 benchmarks/speed.py "${common[@]}" --nfeatures 2048 --repeat 10 --no-pairs \
      --hardnet-batches 32768 2>&1 | tee "$OUT/speed_2048.txt"
    ;;
  test)
    # device=auto means CUDA here: the default pipelines of the whole suite take the torch path
    timeout 540 python3 -m pytest -q -x -p no:cacheprovider -n 4 2>&1 | tail -40 | tee "$OUT/pytest_cuda.txt"
    ;;
  eval)
    for ds in oxford/graf homogr kusvod2-dev; do
      name=$(basename "$ds")
      timeout 170 python3 -m hardmatch.cli eval "$DATA/$ds" --out "$OUT/eval-$name" \
        --pipeline default:path=opencv --pipeline default:path=torch 2>&1 | tail -8
      rm -f "$OUT/eval-$name"/results.{jsonl,csv} "$OUT/eval-$name/summary.png"   # $OUT holds at most 8 files
    done
    ;;
  *) echo "usage: gpu_session.sh bench|test|eval" >&2; exit 2 ;;
esac
