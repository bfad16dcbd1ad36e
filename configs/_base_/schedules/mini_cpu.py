# A CPU-sized schedule for SOI-Det-mini: the recipe's optimiser and step
# schedule (AdamW, warm-up, x0.1 at ~2/3 and ~11/12 of training, clipping at
# 35), in fp32 (AMP needs a GPU), with a learning rate raised for training
# from scratch on a few hundred images.
_base_ = './soi_det_33k.py'

max_iters = 600
# One process x 4 images per optimizer step (2 processes: images_per_step=8).
images_per_step = 4
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
param_scheduler = [
    dict(
        type='LinearLR', start_factor=1.0 / 3, by_epoch=False, begin=0,
        end=50),
    dict(
        type='MultiStepLR',
        by_epoch=False,
        begin=0,
        end=max_iters,
        milestones=[400, 550],
        gamma=0.1)
]
optim_wrapper = dict(
    _delete_=True,
    type='SkipNonFiniteOptimWrapper',  # OptimWrapper, skipping NaN / inf
    optimizer=dict(
        type='AdamW', lr=1e-3, betas=(0.9, 0.999), weight_decay=0.05),
    clip_grad=dict(max_norm=35, norm_type=2))
# Log every 10 iterations, keep the last checkpoint only.
mini_default_hooks = dict(
    logger=dict(interval=10),
    checkpoint=dict(interval=max_iters, max_keep_ckpts=1))
