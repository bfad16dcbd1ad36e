# The DOTA model of the "3 separate models" baseline at CPU scale: Oriented
# R-CNN with SM3Det-mini's backbone, FPN and head widths, on SOI-Det-mini's
# DOTA part (4 images per iteration, 600 iterations).
_base_ = [
    '../_base_/models/oriented-rcnn_convnext-t_fpn.py',
    '../_base_/datasets/dota_mini.py',
    '../_base_/schedules/mini_cpu.py',
    '../_base_/default_runtime.py',
]

model = dict(
    data_preprocessor=dict(pad_value=-2.0),  # see sm3det_convnext-mini_fpn.py
    backbone=dict(arch='mini', drop_path_rate=0.0, init_cfg=None),
    neck=dict(in_channels=[32, 64, 128, 256], out_channels=64),
    rpn_head=dict(in_channels=64, feat_channels=64),
    roi_head=dict(
        bbox_roi_extractor=dict(out_channels=64),
        bbox_head=dict(in_channels=64, fc_out_channels=256)),
    train_cfg=dict(
        rpn_proposal=dict(nms_pre=1000, max_per_img=500),
        rcnn=dict(sampler=dict(num=256))),
    test_cfg=dict(
        rpn=dict(nms_pre=1000, max_per_img=500), rcnn=dict(max_per_img=300)))
default_hooks = dict(
    logger=dict(interval=10),
    checkpoint=dict(interval={{_base_.max_iters}}, max_keep_ckpts=1))
