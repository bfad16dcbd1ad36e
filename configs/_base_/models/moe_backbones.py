# The paper's other MoE backbones in place of ConvNeXt-T (docs/method.md
# section 3): VAN-T/S/B, LSKNet-T/S/B and PVT-v2-T/S/B (PVT-v2-b0/b1/b2).
# In VAN and LSKNet the MLP's fc1 and fc2 (1x1 convs) of the even blocks of
# stages 2-4 each become a GridMoE of 1x1-conv experts, the depthwise conv
# between them stays shared (the authors' van_moe.py / lsk_moe.py placement);
# PVT-v2's FFN is split the same way. Experts: VAN-T 8, top-2; the others 4,
# top-2 (the paper's settings; for PVT-v2 the paper gives none, VAN-S/B's are
# used). Every expert starts as the pretrained conv. Use with an SM3Det
# ConvNeXt config:
#     _base_ = ['<SM3Det ConvNeXt-T config>', '<this file>']
#     model = _base_.van_t
# and, at SOI-Det-mini's scale (trained from scratch), with the mini config:
#     model = _base_.van_mini
# Dropout 0.1 in the MLPs, stochastic depth T 0.1 / S 0 / B 0.2 and SyncBN
# follow the authors' configs; PVT-v2 keeps mmdet's settings.
sync_bn = dict(type='SyncBN', requires_grad=True)
moe_4_top2 = dict(num_experts=4, top_k=2)

# ImageNet-1k checkpoints. VAN: mmpretrain's (VAN-Classification's official
# files load too). LSKNet: the official backbone files (the LSKNet
# repository's download links), to be put under data/pretrained/; there is
# no public LSKNet-B, use your own. PVT-v2: the official files.
van_checkpoint = ('https://download.openmmlab.com/mmclassification/v0/van/'
                  'van-{}_8xb128_in1k_{}.pth')
pvt_v2_checkpoint = ('https://github.com/whai362/PVT/releases/download/v2/'
                     'pvt_v2_{}.pth')


def _van_family(backbone_type,
                arch,
                channels,
                drop_path_rate,
                checkpoint,
                moe_cfg=moe_4_top2):
    return dict(
        backbone=dict(
            _delete_=True,  # another backbone type: no ConvNeXt argument
            type=backbone_type,
            arch=arch,
            drop_rate=0.1,
            drop_path_rate=drop_path_rate,
            norm_cfg=sync_bn,
            moe_blocks=None,  # the even blocks of stages 2-4
            moe_cfg=moe_cfg,
            init_cfg=dict(type='Pretrained', checkpoint=checkpoint)),
        neck=dict(in_channels=channels))


def _pvt_v2(arch, channels):
    return dict(
        backbone=dict(
            _delete_=True,
            type='PVTv2MoE',
            arch=arch,
            moe_blocks=None,
            moe_cfg=moe_4_top2,
            init_cfg=dict(
                type='Pretrained', checkpoint=pvt_v2_checkpoint.format(arch))),
        neck=dict(in_channels=channels))


van_t = _van_family(
    'VANMoE',
    'tiny', [32, 64, 160, 256],
    0.1,
    van_checkpoint.format('tiny', '20220501-385941af'),
    moe_cfg=dict(num_experts=8, top_k=2))
van_s = _van_family('VANMoE', 'small', [64, 128, 320, 512], 0.,
                    van_checkpoint.format('small', '20220501-17bc91aa'))
van_b = _van_family('VANMoE', 'base', [64, 128, 320, 512], 0.2,
                    van_checkpoint.format('base', '20220501-6a4cc31b'))
lsknet_t = _van_family('LSKNetMoE', 'tiny', [32, 64, 160, 256], 0.1,
                       'data/pretrained/lsk_t_backbone.pth.tar')
lsknet_s = _van_family('LSKNetMoE', 'small', [64, 128, 320, 512], 0.,
                       'data/pretrained/lsk_s_backbone.pth.tar')
lsknet_b = _van_family('LSKNetMoE', 'base', [64, 128, 320, 512], 0.2,
                       'data/pretrained/lsk_b_backbone.pth.tar')
pvtv2_t = _pvt_v2('b0', [32, 64, 160, 256])
pvtv2_s = _pvt_v2('b1', [64, 128, 320, 512])
pvtv2_b = _pvt_v2('b2', [64, 128, 320, 512])


# SOI-Det-mini: the 'mini' size of each (depths 1/1/2/1, 32-256 channels),
# from scratch, BN (one process), 4 experts top-2; the FPN width stays the
# mini config's.
def _mini(backbone_type, channels):
    return dict(
        backbone=dict(
            _delete_=True,
            type=backbone_type,
            arch='mini',
            drop_path_rate=0.,
            moe_blocks=None,
            moe_cfg=moe_4_top2,
            init_cfg=None),
        neck=dict(in_channels=channels))


van_mini = _mini('VANMoE', [32, 64, 128, 256])
lsknet_mini = _mini('LSKNetMoE', [32, 64, 128, 256])
pvtv2_mini = _mini('PVTv2MoE', [32, 64, 160, 256])  # 32 x heads 1/2/5/8
