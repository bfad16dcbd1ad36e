# ConvNeXt-S/B/L in place of ConvNeXt-T, for any ConvNeXt-T detector config
# of this repository (SM3Det, GFL, Oriented R-CNN): the backbone size, its
# mmpretrain ImageNet-1k checkpoint, and the FPN inputs, which follow the
# backbone's channels (docs/method.md section 3). Every other setting, the MoE
# placement rule included, stays that of the T config. Use:
#     _base_ = ['<the ConvNeXt-T config>', '<this file>']
#     model = _base_.convnext_b
# (S: depths 3/3/27/3, channels 96-768; B: 128-1024; L: 192-1536.)
convnext_s = dict(
    backbone=dict(
        arch='small',
        init_cfg=dict(
            checkpoint='https://download.openmmlab.com/mmclassification/v0/'
            'convnext/downstream/convnext-small_3rdparty_32xb128-noema_in1k_'
            '20220301-303e75e3.pth')),
    neck=dict(in_channels=[96, 192, 384, 768]))
convnext_b = dict(
    backbone=dict(
        arch='base',
        init_cfg=dict(
            checkpoint='https://download.openmmlab.com/mmclassification/v0/'
            'convnext/downstream/convnext-base_3rdparty_32xb128-noema_in1k_'
            '20220301-2a0ee547.pth')),
    neck=dict(in_channels=[128, 256, 512, 1024]))
convnext_l = dict(
    backbone=dict(
        arch='large',
        init_cfg=dict(
            checkpoint='https://download.openmmlab.com/mmclassification/v0/'
            'convnext/convnext-large_3rdparty_64xb64_in1k_20220124-'
            'f8a0ded0.pth')),
    neck=dict(in_channels=[192, 384, 768, 1536]))
