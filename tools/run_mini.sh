#!/usr/bin/env bash
# The README's main job: set up, then train and evaluate SM3Det on the
# built-in SOI-Det-mini (CPU: 7 to 12 minutes on 2 cores; uses a GPU when
# torch sees one).
#
#   bash tools/run_mini.sh [CONFIG] [extra tools/train.py args]
#
# CONFIG defaults to the SM3Det-mini config; WORK_DIR (environment) defaults
# to work_dirs/<config name>. Prints the SOI-Det table and writes it to
# WORK_DIR/soi_det.md.
set -euo pipefail
cd "$(dirname "$0")/.."

CONFIG=${1:-configs/sm3det/sm3det_convnext-mini_fpn_600it_soi-det-mini.py}
WORK_DIR=${WORK_DIR:-work_dirs/$(basename "$CONFIG" .py)}
PY=${PYTHON:-python3}
# OpenMP threads that spin while waiting slow training ~20x as soon as any
# other process wants a core; sleeping waits cost little when the CPU is idle.
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}

bash tools/install.sh
if [ ! -f data/soi_det_mini/.complete ]; then
    "$PY" tools/misc/generate_soi_det_mini.py --out data/soi_det_mini
    touch data/soi_det_mini/.complete
fi

# Validation during training would evaluate the same images twice: off here.
"$PY" tools/train.py "$CONFIG" --work-dir "$WORK_DIR" "${@:2}" \
    --cfg-options val_cfg=None val_dataloader=None val_evaluator=None
"$PY" tools/test.py "$CONFIG" "$(cat "$WORK_DIR/last_checkpoint")" \
    --work-dir "$WORK_DIR"
