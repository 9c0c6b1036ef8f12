#!/usr/bin/env bash
# Run HERE (the CPU machine), in the repository root, before each device call of tools/gpu_session.sh:
#   bash tools/gpu_prepare.sh STEP        # STEP: bench | test | eval (what that step reads)
# Fetches the wheels the GPU machine lacks (Python 3.12: kornia, kornia_rs, pydegensac; 17 MiB) into
# .whl/ and copies the dev data and weights the step reads into .gpu/ (bench 9, test 30, eval 41 MiB;
# what is carried must stay under 64 MiB in all). Both folders are git-ignored through info/exclude.
# Then, with the device tool:  run(command="bash tools/gpu_session.sh STEP", carry=[".whl", ".gpu"])
set -euo pipefail
step=${1:?usage: gpu_prepare.sh bench|test|eval}
SHARED=${HARDMATCH_SHARED:-../shared}
exclude=$(git rev-parse --git-path info/exclude)
for folder in /.whl/ /.gpu/; do
  grep -qxF "$folder" "$exclude" 2>/dev/null || echo "$folder" >> "$exclude"
done
if ! ls .whl/kornia-0.9.0-*.whl .whl/kornia_rs-0.2.0-*.whl .whl/pydegensac-0.3.0-*.whl >/dev/null 2>&1; then
  python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    -d .whl kornia==0.9.0 kornia_rs==0.2.0 pydegensac==0.3.0
fi
rm -rf .gpu && mkdir -p .gpu/shared/data/homogr .gpu/shared/weights
cp "$SHARED"/weights/AffNet.pth "$SHARED"/weights/OriNet.pth .gpu/shared/weights/
cp -r "$SHARED/data/oxford" .gpu/shared/data/
case "$step" in
  bench) cp "$SHARED"/data/homogr/BostonA.jpg "$SHARED"/data/homogr/BostonB.jpg .gpu/shared/data/homogr/ ;;
  test)  cp -r "$SHARED/data/homogr" "$SHARED/data/hpatches-sample" .gpu/shared/data/ ;;
  eval)  cp -r "$SHARED/data/homogr" "$SHARED/data/kusvod2-dev" .gpu/shared/data/ ;;
  *) echo "usage: gpu_prepare.sh bench|test|eval" >&2; exit 2 ;;
esac
du -shc .whl .gpu
