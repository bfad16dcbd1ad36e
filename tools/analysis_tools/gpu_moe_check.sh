#!/usr/bin/env bash
# The MoE speed check on a GPU machine that has torch but no OpenMMLab
# install (no mmcv build, no package index), in two steps:
#
#   bash tools/analysis_tools/gpu_moe_check.sh download   # here, online:
#       pure-Python wheels of mmengine, mmcv-lite, mmdet, mmrotate and their
#       small dependencies into .whl/ (about 4 MB)
#   bash tools/analysis_tools/gpu_moe_check.sh run [OUT_DIR [ARGS...]]
#       there: installs .whl/ into /tmp/site and runs benchmark_moe.py on
#       CUDA (bf16 and fp32 autocast; auto, grouped and loop backends, the
#       grouped one where this torch has it; the compiled gate; layers and
#       ConvNeXt-T at 1 and 4 x 800x800) through run_moe_only.py. The table
#       goes to OUT_DIR/benchmark_moe.txt (default: the current directory).
#       ARGS go to benchmark_moe.py after these defaults and override them
#       (e.g. --device cpu --skip-backbone for a dry run without a GPU).
set -euo pipefail
cd "$(dirname "$0")/../.."

WHEELS=(mmengine==0.10.7 mmcv-lite==2.0.1 mmdet==3.1.0 mmrotate==1.0.0rc1
        addict==2.4.0 yapf==0.43.0 platformdirs==4.3.6 termcolor==3.3.0)

case "${1:-}" in
download)
    python3 -m pip download --no-deps --only-binary=:all: --dest .whl \
        "${WHEELS[@]}"
    ;;
run)
    out=${2:-.}
    mkdir -p "$out"
    python3 -m pip install -q --no-index --no-deps --no-compile \
        --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
    export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1
    backends=$(python3 -c 'import torch.nn.functional as F
print("auto grouped_mm loop" if hasattr(F, "grouped_mm") else "auto loop")')
    python3 tools/analysis_tools/run_moe_only.py \
        tools/analysis_tools/benchmark_moe.py --device cuda \
        --precisions bf16 fp32 --backends $backends --compile-gate \
        --backbone-batches 1 4 "${@:3}" 2>&1 |
        grep -v '^USDT' | tee "$out/benchmark_moe.txt"
    ;;
*)
    sed -n '2,16p' "$0"
    exit 2
    ;;
esac
