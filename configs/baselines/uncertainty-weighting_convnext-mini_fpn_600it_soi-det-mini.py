# Uncertainty loss weighting at CPU scale: the mini joint model with a learned
# log-variance per task-head sub-module (see
# uncertainty-weighting_convnext-t_fpn_33k_soi-det.py).
_base_ = [
    '../joint/joint_convnext-mini_fpn_600it_soi-det-mini.py',
    '../_base_/uncertainty_weighting.py',
]

model = _base_.uw_model
optim_wrapper = _base_.uw_optim_wrapper
