# SOI-Det-mini's CPU scale, shared by every mini model config (SM3Det, the
# joint baselines, GFL and Oriented R-CNN alone): the 'mini' ConvNeXt (depths
# 1/1/3/1, channels 32-256) trained from scratch, a 64-channel FPN and heads
# narrowed to it. Use with the ConvNeXt-T config of the same model:
#     _base_ = ['<T config>', './mini_scale.py']
#     model = dict(_base_.convnext_mini, **_base_.oriented_rcnn_mini)
mini_fpn_channels = 64

# Training from scratch needs two changes to ConvNeXt's start:
# - Padding at about the black level, as the SAR pipeline's Pad does: with
#   zero biases, exactly-zero batch padding becomes constant tokens all the
#   way down, where each LayerNorm multiplies the gradient by 1/sqrt(eps)
#   (grad norm ~1e10 at step 0).
# - One GroupNorm over the whole map after the stem and on C2 instead of the
#   per-location LayerNorm: that LayerNorm makes each 4x4 patch's embedding
#   blind to the patch's contrast. The RoI heads pool every mini object from
#   P2 and stay at chance with it (README, "Training ConvNeXt from scratch").
convnext_mini = dict(
    data_preprocessor=dict(pad_value=-2.0),
    backbone=dict(
        arch='mini',
        drop_path_rate=0.0,
        stem_norm_cfg=dict(type='GN', num_groups=1, eps=1e-6),
        init_cfg=None),
    neck=dict(in_channels=[32, 64, 128, 256], out_channels=mini_fpn_channels))

# GFL (SAR) with two convs in its tower instead of four.
gfl_mini = dict(
    bbox_head=dict(
        in_channels=mini_fpn_channels,
        feat_channels=mini_fpn_channels,
        stacked_convs=2))
# Oriented R-CNN (DOTA, DroneVehicle); 256-pixel images hold tens of objects,
# not thousands, hence fewer proposals and RoIs.
oriented_rcnn_mini = dict(
    rpn_head=dict(
        in_channels=mini_fpn_channels, feat_channels=mini_fpn_channels),
    roi_head=dict(
        bbox_roi_extractor=dict(out_channels=mini_fpn_channels),
        bbox_head=dict(in_channels=mini_fpn_channels, fc_out_channels=256)),
    train_cfg=dict(
        rpn_proposal=dict(nms_pre=1000, max_per_img=500),
        rcnn=dict(sampler=dict(num=256))),
    test_cfg=dict(
        rpn=dict(nms_pre=1000, max_per_img=500), rcnn=dict(max_per_img=300)))
# The heads of soi_det_heads.py's `soi_det_tasks` at this scale.
soi_det_tasks_mini = dict(
    sar=dict(detector=gfl_mini),
    dota=dict(detector=oriented_rcnn_mini),
    dronevehicle=dict(detector=oriented_rcnn_mini))
