#!/usr/bin/env bash
# GPU ingest figures for issue 32 on one lent H100, in under 10 minutes (bench/gpu_ingest.py says what it measures).
#
# The GPU box has PyTorch, torchvision, Pillow, numpy, pandas and pyarrow but not open_clip, pymilvus or the few
# small packages the app needs besides, and it reaches no package registry: they travel as wheels (git-ignored).
#
#   here, once:        bash bench/gpu.sh prepare     # .whl/ (2.4 MB) and .whl-milvus/ (PyPI's embedded server, 55 MB)
#   there, call 1:     command "bash bench/gpu.sh milvus", carry [".whl-milvus"], timeout_s 120
#   there, call 2:     command "bash bench/gpu.sh", carry [".whl"], timeout_s 600, within 30 s of call 1
#
# The server's wheel and the rest do not fit in one call's 64 MiB together with the working tree, so call 1 installs
# the server into /tmp/site-milvus on the machine, which stays while the machine is warm (30 s after a call). Without
# call 1 the ingest writes nowhere and the run measures the ceiling, decoding and embedding (RESULT says store=none).
# The figures come back in $OUT/gpu.log; the RESULT line is the last.
set -euo pipefail
cd "$(dirname "$0")/.."

WHEELS=(open_clip_torch==3.3.0 ftfy==6.3.1 wcwidth==0.7.0 defusedxml==0.7.1 snowballstemmer==3.1.1
        pymilvus==3.0.2 orjson==3.13.0 python-dotenv==1.2.2 cachetools==8.0.3)
PLATFORM=(--platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64
          --platform manylinux1_x86_64)

download() {  # the wheels for the box's Python 3.12, into folder $1
  local into=$1; shift
  python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    "${PLATFORM[@]}" -d "$into" "$@"
}

case "${1:-run}" in
  prepare)
    exclude=$(git rev-parse --git-path info/exclude)
    mkdir -p "$(dirname "$exclude")"
    grep -qx '/.whl-milvus/' "$exclude" 2>/dev/null || echo '/.whl-milvus/' >> "$exclude"
    download .whl "${WHEELS[@]}"
    download .whl-milvus milvus==2.3.5
    du -sh .whl .whl-milvus
    exit 0 ;;
  milvus)
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site-milvus .whl-milvus/*.whl
    python3 -c "import sys; sys.path.insert(0, '/tmp/site-milvus'); import milvus; print('milvus', milvus.__file__)"
    exit 0 ;;
  run) ;;
  *) echo "usage: bash bench/gpu.sh [prepare|milvus|run]" >&2; exit 2 ;;
esac

OUT=${OUT:-/tmp/gpu-out}
mkdir -p "$OUT"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
export PYTHONPATH="/tmp/site:$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
[ -d /tmp/site-milvus ] && export PYTHONPATH="$PYTHONPATH:/tmp/site-milvus"
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv 2>&1 | tee "$OUT/gpu.log"
python3 -c "import torch, torchvision; print('torch', torch.__version__, 'torchvision', torchvision.__version__)" \
  2>&1 | tee -a "$OUT/gpu.log"
# 3,072 distinct 12 MP files from 192 pictures (~20 s on 16 cores), then the four pipelines (~3-5 minutes)
timeout 540 python3 bench/gpu_ingest.py --photos 3072 --base 192 --embed-n 1536 2>&1 | tee -a "$OUT/gpu.log"
