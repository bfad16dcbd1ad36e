# DSO ablation: SM3Det without DSO (plain AdamW, one parameter group).
# Paper: 49.47 overall mAP.
_base_ = './sm3det_convnext-t_fpn_33k_soi-det.py'

optim_wrapper = dict(
    constructor='DefaultOptimWrapperConstructor',
    paramwise_cfg=dict(_delete_=True))
custom_hooks = []
