# Simple joint training on SOI-Det-mini: SM3Det-mini's structure with a dense
# ConvNeXt-mini, no DSO, and batches drawn at random from the three parts.
_base_ = [
    '../_base_/models/joint_convnext-mini_fpn.py',
    '../_base_/datasets/soi_det_mini.py',
    '../_base_/schedules/mini_cpu.py',
    '../_base_/default_runtime.py',
]

train_dataloader = dict(
    sampler=dict(_delete_=True, type='InfiniteSampler', shuffle=True))
# A random batch may lack a dataset, whose head then gets no gradient.
find_unused_parameters = True
default_hooks = _base_.mini_default_hooks
