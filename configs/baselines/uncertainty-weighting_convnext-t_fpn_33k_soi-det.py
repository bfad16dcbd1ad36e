# Uncertainty loss weighting (Table 1, Kendall et al., CVPR 2018): simple
# joint training in which each task-head sub-module (the SAR head, each OBB
# head's RPN and RoI head: 5) gets a learned log-variance s_i,
# L_i' = exp(-s_i) * L_i + s_i over its loss terms (UncertaintyLossWeighting;
# the weights exp(-s_i) are logged as e.g. dota.rpn_head.weight).
_base_ = [
    '../joint/joint_convnext-t_fpn_33k_soi-det.py',
    '../_base_/uncertainty_weighting.py',
]

model = _base_.uw_model
optim_wrapper = _base_.uw_optim_wrapper
