# The SAR model of the "3 separate models" baseline at CPU scale: GFL with
# SM3Det-mini's backbone, FPN and head widths, on SOI-Det-mini's SAR part
# (4 SAR images per iteration, the same 600 iterations as SM3Det-mini).
_base_ = [
    '../_base_/models/gfl_convnext-t_fpn.py',
    '../_base_/models/mini_scale.py',
    '../_base_/datasets/sardet_mini.py',
    '../_base_/schedules/mini_cpu.py',
    '../_base_/default_runtime.py',
]

model = dict(_base_.convnext_mini, **_base_.gfl_mini)
default_hooks = _base_.mini_default_hooks
