# Runtime shared by every SM3Det config: MMRotate's registries, this plugin,
# iteration-based logging (training runs count iterations, not epochs).
default_scope = 'mmrotate'
custom_imports = dict(imports=['sm3det'], allow_failed_imports=False)

default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50),
    param_scheduler=dict(type='ParamSchedulerHook'),
    # mmengine's CheckpointHook, plus: atomic files, every rank's random state
    # (exact resume), a damaged file to resume from named (docs: README).
    checkpoint=dict(
        type='ResumableCheckpointHook',
        by_epoch=False,
        interval=2789,
        max_keep_ckpts=3),
    # Logs NaN / inf losses with their images; the optim wrapper skips such
    # steps; stops after 10 skipped in a row.
    non_finite=dict(type='NonFiniteGuardHook', max_consecutive_skips=10),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    # 'mmcv kernels: compiled / PyTorch' in the log (results can differ a bit)
    kernels=dict(type='KernelBackendHook'),
    visualization=dict(type='mmdet.DetVisualizationHook'))

env_cfg = dict(
    cudnn_benchmark=False,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    dist_cfg=dict(backend='nccl'))

vis_backends = [dict(type='LocalVisBackend')]
visualizer = dict(
    type='RotLocalVisualizer', vis_backends=vis_backends, name='visualizer')
log_processor = dict(type='LogProcessor', window_size=50, by_epoch=False)

log_level = 'INFO'
load_from = None
resume = False
