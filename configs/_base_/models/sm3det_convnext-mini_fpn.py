# SM3Det at CPU scale for SOI-Det-mini: the ConvNeXt-T model of
# sm3det_convnext-t_fpn.py at mini_scale.py's scale (the 'mini' ConvNeXt,
# depths 1/1/3/1, channels 32-256, the same MoE placement rule, trained from
# scratch; 64-channel FPN; narrower heads). Same structure, same code paths.
_base_ = ['./sm3det_convnext-t_fpn.py', './mini_scale.py']

model = dict(_base_.convnext_mini, tasks=_base_.soi_det_tasks_mini)
