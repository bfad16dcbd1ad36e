# SM3Det (grid-level MoE ConvNeXt-mini, one head per dataset, DSO) on the
# built-in SOI-Det-mini, sized to train and evaluate on a 2-core CPU. The
# README's quick start runs it: bash tools/run_mini.sh
_base_ = [
    '../_base_/models/sm3det_convnext-mini_fpn.py',
    '../_base_/datasets/soi_det_mini.py',
    '../_base_/schedules/mini_cpu.py',
    '../_base_/default_runtime.py',
    '../_base_/dso.py',
]

optim_wrapper = _base_.dso_optim_wrapper
# The mini schedule warms the LR up over 50 iterations, not 500.
custom_hooks = [dict(_base_.dso_hook, warmup_iters=50)]
default_hooks = dict(
    logger=dict(interval=10),
    checkpoint=dict(interval={{_base_.max_iters}}, max_keep_ckpts=1))
