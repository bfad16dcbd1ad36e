# Uncertainty loss weighting at CPU scale: the mini joint model with a learned
# log-variance per loss term (see uncertainty-weighting_convnext-t_fpn_33k_soi-det.py).
_base_ = '../joint/joint_convnext-mini_fpn_600it_soi-det-mini.py'

oriented_rcnn_terms = ['loss_rpn_cls', 'loss_rpn_bbox', 'loss_cls', 'loss_bbox']
model = dict(
    loss_weighting=dict(
        type='UncertaintyLossWeighting',
        loss_terms=[f'sar.{t}' for t in ('loss_cls', 'loss_bbox', 'loss_dfl')] +
        [f'{task}.{t}' for task in ('dota', 'dronevehicle') for t in oriented_rcnn_terms]))
optim_wrapper = dict(
    paramwise_cfg=dict(custom_keys={'loss_weighting': dict(decay_mult=0.)}))
