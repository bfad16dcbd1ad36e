# SM3Det-mini without DSO (plain AdamW, one parameter group) on SOI-Det-mini.
_base_ = './sm3det_convnext-mini_fpn_600it_soi-det-mini.py'

optim_wrapper = dict(
    constructor='DefaultOptimWrapperConstructor',
    paramwise_cfg=dict(_delete_=True))
custom_hooks = []
