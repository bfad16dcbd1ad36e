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

# The sub-modules and their loss terms come from the model: SM3Det derives
# them from `model.tasks` (sm3det/models/detectors/task_sub_modules.py), one
# per single-stage head and an RPN and a RoI head per two-stage one; for
# SOI-Det the five of the reference implementation: `sar` (heads.sar,
# sar.loss_cls / loss_bbox / loss_dfl), `dota.rpn_head` (dota.loss_rpn_*),
# `dota.roi_head` (dota.loss_cls / loss_bbox), and DroneVehicle's two. A head
# whose parts differ sets `sub_modules` in its task entry (e.g. S2ANet:
# dict(bbox_head_init='*_init', bbox_head_refine='*_refine_*')).
dso_optim_wrapper = dict(constructor='SubModuleOptimWrapperConstructor')

dso_hook = dict(
    type='DSOHook',
    alpha=0.001,  # EMA rate of the loss history
    theta=3.0,  # head policy: softmax temperature
    tau=3.0,  # backbone policy: sigmoid slope
    b=0.4,  # backbone policy: consistency at which gamma = 1
    warmup_iters=500,  # EMA only, no multipliers (the LR warm-up length)
    head_policy=True,
    backbone_policy=True,
    variant='reference')  # or 'paper': softmax over tasks, KL(P(cur)||P(his))
