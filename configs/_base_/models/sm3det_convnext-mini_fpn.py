# SM3Det at CPU scale for SOI-Det-mini: the ConvNeXt-T model of
# sm3det_convnext-t_fpn.py with the 'mini' ConvNeXt (depths 1/1/3/1, channels
# 32-256, the same MoE placement rule), 64-channel FPN and narrower heads,
# trained from scratch (convnext_sizes.py's convnext_mini). Same structure,
# same code paths.
_base_ = ['./sm3det_convnext-t_fpn.py', './convnext_sizes.py']

fpn_channels = _base_.convnext_mini.neck.out_channels
narrow_oriented_rcnn = dict(
    detector=dict(
        rpn_head=dict(in_channels=fpn_channels, feat_channels=fpn_channels),
        roi_head=dict(
            bbox_roi_extractor=dict(out_channels=fpn_channels),
            bbox_head=dict(in_channels=fpn_channels, fc_out_channels=256)),
        # 256-pixel images hold tens of objects, not thousands.
        train_cfg=dict(
            rpn_proposal=dict(nms_pre=1000, max_per_img=500),
            rcnn=dict(sampler=dict(num=256))),
        test_cfg=dict(
            rpn=dict(nms_pre=1000, max_per_img=500),
            rcnn=dict(max_per_img=300))))

model = dict(
    _base_.convnext_mini,
    tasks=dict(
        sar=dict(detector=dict(bbox_head=dict(
            in_channels=fpn_channels, feat_channels=fpn_channels,
            stacked_convs=2))),
        dota=narrow_oriented_rcnn,
        dronevehicle=narrow_oriented_rcnn))
