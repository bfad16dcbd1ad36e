# SM3Det-mini without DSO (plain AdamW, one parameter group) on SOI-Det-mini.
_base_ = [
    '../_base_/models/sm3det_convnext-mini_fpn.py',
    '../_base_/datasets/soi_det_mini.py',
    '../_base_/schedules/mini_cpu.py',
    '../_base_/default_runtime.py',
]

default_hooks = _base_.mini_default_hooks
