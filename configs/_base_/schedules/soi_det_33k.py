# docs/method.md section 5: AdamW 1e-4, 33,468 iterations (12 "epochs" of 2,789
# iterations at 8 GPUs x 4 images), LR x0.1 at 22,312 and 30,679, linear
# warm-up over 500 iterations from 1/3, gradient clipping at 35, fp16 with a
# dynamic loss scale.
max_iters = 33468
val_interval = 2789

# The counts here are optimizer steps of `images_per_step` images (8 GPUs x
# 4 images), on any number of GPUs: on fewer, each step accumulates
# iterations and the counts are scaled to match (ImagesPerStepRunner).
runner_type = 'mmrotate.ImagesPerStepRunner'
images_per_step = 32

# IterBasedTrainLoop that resumes at iteration N without reading N batches.
train_cfg = dict(
    type='ResumableIterBasedTrainLoop',
    max_iters=max_iters,
    val_interval=val_interval)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')

param_scheduler = [
    dict(
        type='LinearLR',
        start_factor=1.0 / 3,
        by_epoch=False,
        begin=0,
        end=500),
    dict(
        type='MultiStepLR',
        by_epoch=False,
        begin=0,
        end=max_iters,
        milestones=[22312, 30679],
        gamma=0.1)
]

# AmpOptimWrapper that skips (and counts) a step whose loss is NaN / inf.
# dtype: fp16 autocast, the original recipe; 'bfloat16' on GPUs that have it
# (Ampere and newer) avoids fp16's overflows (users of the original code
# report NaN losses with fp16) and takes the MoE layer's grouped-GEMM path on
# H100 / H200: --cfg-options optim_wrapper.dtype=bfloat16 (README, AMP).
optim_wrapper = dict(
    type='SkipNonFiniteAmpOptimWrapper',
    dtype='float16',
    loss_scale='dynamic',
    optimizer=dict(
        type='AdamW', lr=1e-4, betas=(0.9, 0.999), weight_decay=0.05),
    clip_grad=dict(max_norm=35, norm_type=2))

# The recipe's total batch: 8 GPUs x 4 images (2 SAR, 1 DOTA, 1 DroneVehicle).
auto_scale_lr = dict(enable=False, base_batch_size=32)
