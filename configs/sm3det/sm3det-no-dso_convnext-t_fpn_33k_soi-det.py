# DSO ablation: SM3Det without DSO (plain AdamW, one parameter group).
_base_ = [
    '../_base_/models/sm3det_convnext-t_fpn.py',
    '../_base_/datasets/soi_det.py',
    '../_base_/schedules/soi_det_33k.py',
    '../_base_/default_runtime.py',
]
