# Uncertainty loss weighting (Kendall et al., CVPR 2018): one learned s_i per
# sub-module of the task heads, the same sub-modules DSO uses (SM3Det's
# `sub_modules`, derived from model.tasks: SOI-Det's SAR head and each OBB
# head's RPN and RoI head), L_i' = exp(-s_i) * L_i + s_i over the loss terms
# of sub-module i. Named `uw_*` so that a config inheriting a main config and
# this fragment merges them in (mmengine refuses a top-level key defined by
# two bases):
#
#   _base_ = ['<joint config>', '../_base_/uncertainty_weighting.py']
#   model = _base_.uw_model
#   optim_wrapper = _base_.uw_optim_wrapper
uw_model = dict(loss_weighting=dict(type='UncertaintyLossWeighting'))
# The s_i are no weights to shrink towards 0.
uw_optim_wrapper = dict(
    paramwise_cfg=dict(custom_keys={'loss_weighting': dict(decay_mult=0.)}))
