# SM3Det-T (sm3det_convnext-t_fpn_33k_soi-det.py) on 4 GPUs, with the
# recipe's optimizer step: 4 GPUs x 4 images (2 SAR, 1 DOTA, 1 DroneVehicle
# each) x 2 accumulated iterations = 32 images at 2:1:1.
#   bash tools/dist_train.sh \
#       configs/sm3det/sm3det_convnext-t_fpn_33k_soi-det_4gpus.py 4
_base_ = './sm3det_convnext-t_fpn_33k_soi-det.py'

accumulative_counts = 2

# The recipe's iteration counts are optimizer steps; with accumulation the
# loop counts data-loader iterations, so every count is scaled by k (DSO's
# EMA rate divided by k: the same horizon in images).
k = accumulative_counts
optim_wrapper = dict(accumulative_counts=k)
train_cfg = dict(
    max_iters=_base_.max_iters * k, val_interval=_base_.val_interval * k)
warmup, steps = _base_.param_scheduler
param_scheduler = [
    dict(warmup, end=warmup['end'] * k),
    dict(
        steps,
        end=steps['end'] * k,
        milestones=[m * k for m in steps['milestones']])
]
default_hooks = dict(
    checkpoint=dict(interval=_base_.default_hooks.checkpoint.interval * k))
dso = _base_.custom_hooks[0]
custom_hooks = [
    dict(dso, warmup_iters=dso['warmup_iters'] * k, alpha=dso['alpha'] / k)
]
# The optimizer step's batch is the recipe's 32: no learning-rate scaling
# (mmengine's auto_scale_lr counts GPUs x 4 and ignores accumulation).
auto_scale_lr = dict(enable=False)
