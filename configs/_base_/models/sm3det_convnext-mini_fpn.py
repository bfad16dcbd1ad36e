# SM3Det at CPU scale for SOI-Det-mini: the ConvNeXt-T model of
# sm3det_convnext-t_fpn.py with the 'mini' ConvNeXt (depths 1/1/3/1, channels
# 32-256, the same MoE placement rule), 64-channel FPN and narrower heads,
# trained from scratch. Same structure, same code paths.
_base_ = './sm3det_convnext-t_fpn.py'

fpn_channels = 64
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
    # From scratch, ConvNeXt's zero biases turn exactly-zero batch padding
    # into constant tokens all the way down, where each LayerNorm multiplies
    # the gradient by 1/sqrt(eps) (grad norm ~1e10 at step 0). Padding with
    # about the black level, as the SAR pipeline's Pad does, avoids it.
    data_preprocessor=dict(pad_value=-2.0),
    backbone=dict(arch='mini', drop_path_rate=0.0, init_cfg=None),
    neck=dict(in_channels=[32, 64, 128, 256], out_channels=fpn_channels),
    tasks=dict(
        sar=dict(detector=dict(bbox_head=dict(
            in_channels=fpn_channels, feat_channels=fpn_channels,
            stacked_convs=2))),
        dota=narrow_oriented_rcnn,
        dronevehicle=narrow_oriented_rcnn))
