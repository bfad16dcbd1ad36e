#!/usr/bin/env bash
# Distributed training with torchrun:  tools/dist_train.sh CONFIG GPUS [train.py args]
# Multi-node: set NNODES, NODE_RANK, MASTER_ADDR and PORT on every node.
# Without GPUs, GPUS processes run on the CPU (gloo backend).
exec "$(dirname "$0")/dist_run.sh" train.py "$2" "$1" "${@:3}"
