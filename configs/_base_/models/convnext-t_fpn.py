# The trunk every ConvNeXt-T model here shares (SM3Det, the joint baselines
# and the separate single-dataset models): image normalisation, the dense
# ConvNeXt-T with mmpretrain's ImageNet-1k weights, and an FPN over C2-C5
# giving P2-P7 (docs/method.md section 3). SM3Det turns blocks of this ConvNeXt
# into MoE layers (sm3det_convnext-t_fpn.py); a single-dataset detector takes
# the FPN levels its head reads (gfl_convnext-t_fpn.py: P3-P7).
fpn_channels = 256

pretrained = ('https://download.openmmlab.com/mmclassification/v0/convnext/'
              'downstream/convnext-tiny_3rdparty_32xb128-noema_in1k_'
              '20220301-795e9634.pth')

det_data_preprocessor = dict(
    type='mmdet.DetDataPreprocessor',
    mean=[123.675, 116.28, 103.53],
    std=[58.395, 57.12, 57.375],
    bgr_to_rgb=True,
    pad_size_divisor=32,
    boxtype2tensor=False)
# ConvNeXtMoE with no MoE block is exactly the dense ConvNeXt.
convnext_t = dict(
    type='ConvNeXtMoE',
    arch='tiny',
    drop_path_rate=0.1,
    layer_scale_init_value=1e-6,
    out_indices=(0, 1, 2, 3),
    moe_blocks=[],
    init_cfg=dict(
        type='Pretrained', checkpoint=pretrained, prefix='backbone.'))
fpn = dict(
    type='mmdet.FPN',
    in_channels=[96, 192, 384, 768],
    out_channels=fpn_channels,
    start_level=0,
    add_extra_convs='on_output',
    num_outs=6)
