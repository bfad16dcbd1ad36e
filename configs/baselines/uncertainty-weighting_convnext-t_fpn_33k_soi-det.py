# Uncertainty loss weighting (Table 1, Kendall et al., CVPR 2018): simple
# joint training whose 11 loss terms each get a learned log-variance s_i,
# L_i' = exp(-s_i) * L_i + s_i (UncertaintyLossWeighting; the weights
# exp(-s_i) are logged as e.g. sar.weight_cls). Paper: 48.79 overall mAP
# (SAR 53.43, DOTA 46.94, DroneVehicle 48.78), 66M params.
_base_ = '../joint/joint_convnext-t_fpn_33k_soi-det.py'

oriented_rcnn_terms = ['loss_rpn_cls', 'loss_rpn_bbox', 'loss_cls', 'loss_bbox']
model = dict(
    loss_weighting=dict(
        type='UncertaintyLossWeighting',
        loss_terms=[f'sar.{t}' for t in ('loss_cls', 'loss_bbox', 'loss_dfl')] +
        [f'{task}.{t}' for task in ('dota', 'dronevehicle') for t in oriented_rcnn_terms]))
# The s_i are no weights to shrink towards 0.
optim_wrapper = dict(
    paramwise_cfg=dict(custom_keys={'loss_weighting': dict(decay_mult=0.)}))
