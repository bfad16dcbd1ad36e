# SM3Det with Dynamic Sub-module Optimisation on SOI-Det-mini (CPU-sized).
_base_ = [
    './sm3det_convnext-mini_fpn_600it_soi-det-mini.py', '../_base_/dso.py'
]

optim_wrapper = _base_.dso_optim_wrapper
# The mini schedule warms the LR up over 50 iterations, not 500.
custom_hooks = [dict(_base_.dso_hook, warmup_iters=50)]
