# Dynamic Sub-module Optimisation (DSO) for SM3Det's SOI-Det heads.
#
# mmengine refuses a top-level key defined by two bases, and every main config
# defines `optim_wrapper`, so this fragment names its pieces `dso_*`; a config
# that inherits both the main config and this fragment merges them in:
#
#   _base_ = ['./sm3det_<...>.py', '../_base_/dso.py']
#   optim_wrapper = _base_.dso_optim_wrapper   # merged into the main one
#   custom_hooks = [_base_.dso_hook]
#
# Variants override hook options: custom_hooks = [dict(_base_.dso_hook, b=0.5)]

# The five sub-modules of the reference implementation: parameter name prefix
# in the SM3Det detector (used by the optimizer constructor) ...
dso_sub_modules = dict(
    sar_head='heads.sar',
    dota_rpn='heads.dota.rpn_head',
    dota_roi='heads.dota.roi_head',
    dronevehicle_rpn='heads.dronevehicle.rpn_head',
    dronevehicle_roi='heads.dronevehicle.roi_head')
# ... and their loss terms, 11 in all (used by the hook).
dso_loss_terms = dict(
    sar_head=['sar.loss_cls', 'sar.loss_bbox', 'sar.loss_dfl'],
    dota_rpn=['dota.loss_rpn_cls', 'dota.loss_rpn_bbox'],
    dota_roi=['dota.loss_cls', 'dota.loss_bbox'],
    dronevehicle_rpn=[
        'dronevehicle.loss_rpn_cls', 'dronevehicle.loss_rpn_bbox'
    ],
    dronevehicle_roi=['dronevehicle.loss_cls', 'dronevehicle.loss_bbox'])

dso_optim_wrapper = dict(
    constructor='SubModuleOptimWrapperConstructor',
    paramwise_cfg=dict(sub_modules=dso_sub_modules))

dso_hook = dict(
    type='DSOHook',
    loss_terms=dso_loss_terms,
    alpha=0.001,  # EMA rate of the loss history
    theta=3.0,  # head policy: softmax temperature
    tau=3.0,  # backbone policy: sigmoid slope
    b=0.4,  # backbone policy: consistency at which gamma = 1
    warmup_iters=500,  # EMA only, no multipliers (the LR warm-up length)
    head_policy=True,
    backbone_policy=True,
    variant='reference')  # or 'paper': softmax over tasks, KL(P(cur)||P(his))
