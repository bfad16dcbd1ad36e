# SOI-Det-mini's CPU scale, shared by every mini model config (SM3Det, the
# joint baselines, GFL and Oriented R-CNN alone): the 'mini' ConvNeXt (depths
# 1/1/3/1, channels 32-256) trained from scratch, a 64-channel FPN and heads
# narrowed to it. Use with the ConvNeXt-T config of the same model:
#     _base_ = ['<T config>', './mini_scale.py']
#     model = dict(_base_.convnext_mini, **_base_.oriented_rcnn_mini)
mini_fpn_channels = 64

# Training from scratch needs two changes to ConvNeXt's start:
# - Batch padding at about the black level (pad_value below): with
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
# Two-stage heads: narrow RPN and RoI heads; 256-pixel images hold tens of
# objects, not thousands, hence fewer proposals and RoIs.
rpn_head_mini = dict(
    in_channels=mini_fpn_channels, feat_channels=mini_fpn_channels)
roi_extractor_mini = dict(out_channels=mini_fpn_channels)
rcnn_head_mini = dict(in_channels=mini_fpn_channels, fc_out_channels=256)
proposals_mini = dict(nms_pre=1000, max_per_img=500)
rcnn_train_mini = dict(sampler=dict(num=256))
faster_rcnn_mini = dict(
    rpn_head=rpn_head_mini,
    roi_head=dict(
        bbox_roi_extractor=roi_extractor_mini, bbox_head=rcnn_head_mini),
    train_cfg=dict(rpn_proposal=proposals_mini, rcnn=rcnn_train_mini),
    test_cfg=dict(rpn=proposals_mini))
# Oriented R-CNN (DOTA, DroneVehicle).
oriented_rcnn_mini = dict(
    faster_rcnn_mini,
    test_cfg=dict(rpn=proposals_mini, rcnn=dict(max_per_img=300)))
# The heads of soi_det_heads.py's `soi_det_tasks` at this scale.
soi_det_tasks_mini = dict(
    sar=dict(detector=gfl_mini),
    dota=dict(detector=oriented_rcnn_mini),
    dronevehicle=dict(detector=oriented_rcnn_mini))

# The head pairs' other heads at this scale (sm3det_convnext-mini_fpn.py
# applies them; '0', '1', '2' index the stages of a cascade).
cascade_rcnn_mini = dict(
    faster_rcnn_mini,
    roi_head=dict(
        bbox_roi_extractor=roi_extractor_mini,
        bbox_head={
            '0': rcnn_head_mini,
            '1': rcnn_head_mini,
            '2': rcnn_head_mini
        }),
    train_cfg=dict(
        rpn_proposal=proposals_mini,
        rcnn={
            '0': rcnn_train_mini,
            '1': rcnn_train_mini,
            '2': rcnn_train_mini
        }))
retinanet_mini = gfl_mini  # two tower convs as well
roi_trans_mini = dict(
    rpn_head=rpn_head_mini,
    roi_head=dict(
        bbox_roi_extractor={
            '0': roi_extractor_mini,
            '1': roi_extractor_mini
        },
        bbox_head={
            '0': rcnn_head_mini,
            '1': rcnn_head_mini
        }),
    train_cfg=dict(
        rpn_proposal=proposals_mini,
        rcnn={
            '0': rcnn_train_mini,
            '1': rcnn_train_mini
        }),
    test_cfg=oriented_rcnn_mini['test_cfg'])
s2anet_mini = dict(
    bbox_head_init=dict(
        in_channels=mini_fpn_channels, feat_channels=mini_fpn_channels),
    bbox_head_refine={
        '0':
        dict(
            in_channels=mini_fpn_channels,
            feat_channels=mini_fpn_channels,
            frm_cfg=dict(feat_channels=mini_fpn_channels))
    },
    test_cfg=dict(nms_pre=1000, max_per_img=300))
