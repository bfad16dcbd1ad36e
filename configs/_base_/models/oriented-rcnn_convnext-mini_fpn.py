# Oriented R-CNN at CPU scale: oriented-rcnn_convnext-t_fpn.py with SM3Det-mini's
# ConvNeXt-mini backbone (trained from scratch), 64-channel FPN and head widths
# (see sm3det_convnext-mini_fpn.py). The OBB models of the "3 separate models"
# baseline on SOI-Det-mini.
_base_ = ['./oriented-rcnn_convnext-t_fpn.py', './convnext_sizes.py']

model = dict(
    _base_.convnext_mini,
    rpn_head=dict(in_channels=64, feat_channels=64),
    roi_head=dict(
        bbox_roi_extractor=dict(out_channels=64),
        bbox_head=dict(in_channels=64, fc_out_channels=256)),
    train_cfg=dict(
        rpn_proposal=dict(nms_pre=1000, max_per_img=500),
        rcnn=dict(sampler=dict(num=256))),
    test_cfg=dict(
        rpn=dict(nms_pre=1000, max_per_img=500), rcnn=dict(max_per_img=300)))
