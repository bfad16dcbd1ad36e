# SM3Det, DSO only (Table 1): a dense ConvNeXt-T (no MoE) trained with DSO,
# b = 0.5 as in the reference implementation. Paper: 49.40 overall mAP.
_base_ = './sm3det_convnext-t_fpn_33k_soi-det.py'

model = dict(backbone=dict(moe_blocks=[]))
custom_hooks = [dict(_base_.dso_hook, b=0.5)]
