# Uncertainty loss weighting (Table 1, Kendall et al., CVPR 2018): simple
# joint training whose 11 loss terms each get a learned log-variance s_i,
# L_i' = exp(-s_i) * L_i + s_i (UncertaintyLossWeighting; the weights
# exp(-s_i) are logged as e.g. sar.weight_cls). Paper: 48.79 overall mAP
# (SAR 53.43, DOTA 46.94, DroneVehicle 48.78), 66M params.
_base_ = [
    '../joint/joint_convnext-t_fpn_33k_soi-det.py',
    '../_base_/uncertainty_weighting.py',
]

model = _base_.uw_model
optim_wrapper = _base_.uw_optim_wrapper
