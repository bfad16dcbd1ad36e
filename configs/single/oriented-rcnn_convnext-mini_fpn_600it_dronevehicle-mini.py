# The DroneVehicle model of the "3 separate models" baseline at CPU scale:
# Oriented R-CNN with SM3Det-mini's backbone, FPN and head widths, on
# SOI-Det-mini's DroneVehicle part (4 images per iteration, 600 iterations).
_base_ = [
    '../_base_/models/oriented-rcnn_convnext-mini_fpn.py',
    '../_base_/datasets/dronevehicle_mini.py',
    '../_base_/schedules/mini_cpu.py',
    '../_base_/default_runtime.py',
]

model = dict(roi_head=dict(bbox_head=dict(num_classes=5)))
default_hooks = _base_.mini_default_hooks
