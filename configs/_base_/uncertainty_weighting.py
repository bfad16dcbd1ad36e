# Uncertainty loss weighting (Kendall et al., CVPR 2018) for SOI-Det's 11 loss
# terms: L_i' = exp(-s_i) * L_i + s_i with a learned s_i per term. Named
# `uw_*` so that a config inheriting a main config and this fragment merges
# them in (mmengine refuses a top-level key defined by two bases):
#
#   _base_ = ['<joint config>', '../_base_/uncertainty_weighting.py']
#   model = _base_.uw_model
#   optim_wrapper = _base_.uw_optim_wrapper
oriented_rcnn_terms = ['loss_rpn_cls', 'loss_rpn_bbox', 'loss_cls', 'loss_bbox']
uw_model = dict(
    loss_weighting=dict(
        type='UncertaintyLossWeighting',
        loss_terms=[f'sar.{t}' for t in ('loss_cls', 'loss_bbox', 'loss_dfl')] +
        [f'{task}.{t}' for task in ('dota', 'dronevehicle')
         for t in oriented_rcnn_terms]))
# The s_i are no weights to shrink towards 0.
uw_optim_wrapper = dict(
    paramwise_cfg=dict(custom_keys={'loss_weighting': dict(decay_mult=0.)}))
