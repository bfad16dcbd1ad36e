#!/usr/bin/env bash
# The whole detector and the MoE layer on a GPU machine that has torch (with
# CUDA) but no OpenMMLab install and no package index, in two steps:
#
#   bash tools/analysis_tools/gpu_check.sh download   # here, online:
#       the pure-Python (and cp312 manylinux) wheels the plugin needs beyond
#       torch, numpy, opencv, scipy, matplotlib, rich and pyyaml into .whl/
#       (6.5 MB): mmengine, mmcv-lite (mmcv's kernels are then the
#       PyTorch ones of sm3det_compat.ops), mmdet, mmrotate, e2cnn,
#       shapely, pycocotools, ...
#   bash tools/analysis_tools/gpu_check.sh run [OUT_DIR [ARGS...]]
#       there: installs .whl/ and this checkout (editable, with its startup
#       hook) into that machine's Python, offline, then
#       1. benchmark_detector.py: SM3Det-T and the dense joint model, bf16
#          AMP, 30 training iterations of 4 x 800x800 (2:1:1) after 5 of
#          warm-up, then a test pass: s/iter, their ratio, peak memory,
#          test images/s -> OUT_DIR/benchmark_detector.txt;
#       2. benchmark_moe.py's layer table (bf16, fp32; every expert backend
#          this torch has; no backbone rows) -> OUT_DIR/benchmark_moe.txt.
#       ARGS go to benchmark_detector.py and override its defaults (a dry run
#       without a GPU: --device cpu --size 128 --iters 2 --warmup 1).
#       About 5 minutes on an H100.
set -euo pipefail
cd "$(dirname "$0")/../.."

PURE=(mmengine==0.10.7 mmcv-lite==2.0.1 mmdet==3.1.0 mmrotate==1.0.0rc1
      addict==2.4.0 yapf==0.43.0 platformdirs==4.3.6 termcolor==3.3.0
      terminaltables==3.1.10 e2cnn==0.2.3)
BINARY=(shapely==2.2.0 pycocotools==2.0.11)

case "${1:-}" in
download)
    python3 -m pip download -q --no-deps --only-binary=:all: --dest .whl \
        "${PURE[@]}"
    python3 -m pip download -q --no-deps --only-binary=:all: --dest .whl \
        --python-version 3.12 --implementation cp \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
        --platform manylinux2014_x86_64 "${BINARY[@]}"
    du -sh .whl
    ;;
run)
    out=${2:-.}
    mkdir -p "$out"
    # as a user would install, but offline (a throwaway machine)
    python3 -m pip install -q --no-index --no-deps --no-compile \
        --no-cache-dir .whl/*.whl
    python3 -m pip install -q --no-index --no-deps --no-build-isolation -e .
    export PYTHONUNBUFFERED=1
    device=$(python3 -c 'import torch; print("cuda" if torch.cuda.is_available() else "cpu")')
    python3 tools/analysis_tools/benchmark_detector.py "${@:3}" 2>&1 |
        tee "$out/benchmark_detector.txt"
    backends=$(python3 -c 'import torch.nn.functional as F
print("auto grouped_mm loop" if hasattr(F, "grouped_mm") else "auto loop")')
    precisions="bf16 fp32"
    [[ $device == cpu ]] && precisions=fp32
    python3 tools/analysis_tools/benchmark_moe.py --device "$device" \
        --precisions $precisions --backends $backends --skip-backbone \
        --repeats 3 2>&1 | tee "$out/benchmark_moe.txt"
    ;;
*)
    sed -n '2,21p' "$0"
    exit 2
    ;;
esac
