#!/usr/bin/env bash
# Run HERE (the CPU machine), in the repository root, before the device calls of tools/gpu_session.sh.
# Fetches the wheels the GPU machine lacks (Python 3.12: kornia, kornia_rs, pydegensac) into .whl/
# and copies the dev data and weights the benchmark and the tests read into .gpu/ (about 50 MB;
# everything carried must stay under 64 MiB). Both folders are git-ignored through info/exclude.
# Then, with the device tool:  run(command="bash tools/gpu_session.sh bench", carry=[".whl", ".gpu"])
set -euo pipefail
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
rm -rf .gpu && mkdir -p .gpu/shared/data .gpu/torch_home/hub/checkpoints
for sub in homogr oxford kusvod2-dev hpatches-sample; do
  cp -r "$SHARED/data/$sub" .gpu/shared/data/
done
cp -r "$SHARED/weights" .gpu/shared/weights
cp "$SHARED"/weights/AffNet.pth "$SHARED"/weights/OriNet.pth .gpu/torch_home/hub/checkpoints/
du -sh .whl .gpu
