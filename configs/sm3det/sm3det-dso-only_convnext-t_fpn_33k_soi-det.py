# SM3Det, DSO only (Table 1): the joint model's dense ConvNeXt-T (no MoE)
# trained with DSO at 2:1:1, b = 0.5 as in the reference implementation.
_base_ = [
    '../_base_/models/joint_convnext-t_fpn.py',
    '../_base_/datasets/soi_det.py',
    '../_base_/schedules/soi_det_33k.py',
    '../_base_/default_runtime.py',
    '../_base_/dso.py',
]

optim_wrapper = _base_.dso_optim_wrapper
custom_hooks = [dict(_base_.dso_hook, b=0.5)]
