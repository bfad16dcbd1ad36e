# The joint baselines' model at CPU scale for SOI-Det-mini:
# joint_convnext-t_fpn.py at mini_scale.py's scale (dense ConvNeXt-mini from
# scratch, 64-channel FPN, narrower heads), i.e. SM3Det-mini without MoE.
_base_ = ['./joint_convnext-t_fpn.py', './mini_scale.py']

model = dict(_base_.convnext_mini, tasks=_base_.soi_det_tasks_mini)
