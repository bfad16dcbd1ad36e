# SM3Det, ConvNeXt-T (METHOD.md section 3): a grid-level MoE ConvNeXt-T
# backbone (8 experts, top-2, in the even blocks of stages 2-4), one FPN
# giving P2-P7, and one head per dataset of SOI-Det.
import copy
angle_version = 'le90'
fpn_channels = 256

# mmpretrain's ImageNet-1k ConvNeXt-T; every expert starts as its MLP.
pretrained = ('https://download.openmmlab.com/mmclassification/v0/convnext/'
              'downstream/convnext-tiny_3rdparty_32xb128-noema_in1k_'
              '20220301-795e9634.pth')

sar_head = dict(  # GFL on P3-P7, horizontal boxes
    detector=dict(
        type='mmdet.GFL',
        # GFLHead builds unscoped mmdet parts (its DistancePointBBoxCoder).
        _scope_='mmdet',
        bbox_head=dict(
            type='mmdet.GFLHead',
            num_classes=6,
            in_channels=fpn_channels,
            stacked_convs=4,
            feat_channels=fpn_channels,
            anchor_generator=dict(
                type='mmdet.AnchorGenerator',
                ratios=[1.0],
                octave_base_scale=8,
                scales_per_octave=1,
                strides=[8, 16, 32, 64, 128]),
            loss_cls=dict(
                type='mmdet.QualityFocalLoss',
                use_sigmoid=True,
                beta=2.0,
                loss_weight=1.0),
            loss_dfl=dict(type='mmdet.DistributionFocalLoss', loss_weight=0.25),
            reg_max=16,
            loss_bbox=dict(type='mmdet.GIoULoss', loss_weight=2.0)),
        train_cfg=dict(
            assigner=dict(type='mmdet.ATSSAssigner', topk=9),
            allowed_border=-1,
            pos_weight=-1,
            debug=False),
        test_cfg=dict(
            nms_pre=1000,
            min_bbox_size=0,
            score_thr=0.05,
            nms=dict(type='nms', iou_threshold=0.6),
            max_per_img=100)),
    feat_levels=(1, 2, 3, 4, 5),
    boxtype2tensor=True)  # mmdet's GFL and ATSS want tensor boxes

# MMRotate 1.x's stock Oriented R-CNN (le90) on P2-P6, oriented boxes.
dota_head = dict(
    detector=dict(
        type='mmdet.FasterRCNN',
        rpn_head=dict(
            type='OrientedRPNHead',
            in_channels=fpn_channels,
            feat_channels=fpn_channels,
            anchor_generator=dict(
                type='mmdet.AnchorGenerator',
                scales=[8],
                ratios=[0.5, 1.0, 2.0],
                strides=[4, 8, 16, 32, 64],
                use_box_type=True),
            bbox_coder=dict(
                type='MidpointOffsetCoder',
                angle_version=angle_version,
                target_means=[0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
                target_stds=[1.0, 1.0, 1.0, 1.0, 0.5, 0.5]),
            loss_cls=dict(
                type='mmdet.CrossEntropyLoss', use_sigmoid=True,
                loss_weight=1.0),
            loss_bbox=dict(
                type='mmdet.SmoothL1Loss', beta=0.1111111111111111,
                loss_weight=1.0)),
        roi_head=dict(
            type='mmdet.StandardRoIHead',
            bbox_roi_extractor=dict(
                type='RotatedSingleRoIExtractor',
                roi_layer=dict(
                    type='RoIAlignRotated',
                    out_size=7,
                    sample_num=2,
                    clockwise=True),
                out_channels=fpn_channels,
                featmap_strides=[4, 8, 16, 32]),
            bbox_head=dict(
                type='mmdet.Shared2FCBBoxHead',
                predict_box_type='rbox',
                in_channels=fpn_channels,
                fc_out_channels=1024,
                roi_feat_size=7,
                num_classes=15,
                reg_predictor_cfg=dict(type='mmdet.Linear'),
                cls_predictor_cfg=dict(type='mmdet.Linear'),
                bbox_coder=dict(
                    type='DeltaXYWHTRBBoxCoder',
                    angle_version=angle_version,
                    norm_factor=None,
                    edge_swap=True,
                    proj_xy=True,
                    target_means=(.0, .0, .0, .0, .0),
                    target_stds=(0.1, 0.1, 0.2, 0.2, 0.1)),
                reg_class_agnostic=True,
                loss_cls=dict(
                    type='mmdet.CrossEntropyLoss',
                    use_sigmoid=False,
                    loss_weight=1.0),
                loss_bbox=dict(
                    type='mmdet.SmoothL1Loss', beta=1.0, loss_weight=1.0))),
        train_cfg=dict(
            rpn=dict(
                assigner=dict(
                    type='mmdet.MaxIoUAssigner',
                    pos_iou_thr=0.7,
                    neg_iou_thr=0.3,
                    min_pos_iou=0.3,
                    match_low_quality=True,
                    ignore_iof_thr=-1,
                    iou_calculator=dict(type='RBbox2HBboxOverlaps2D')),
                sampler=dict(
                    type='mmdet.RandomSampler',
                    num=256,
                    pos_fraction=0.5,
                    neg_pos_ub=-1,
                    add_gt_as_proposals=False),
                allowed_border=0,
                pos_weight=-1,
                debug=False),
            rpn_proposal=dict(
                nms_pre=2000,
                max_per_img=2000,
                nms=dict(type='nms', iou_threshold=0.8),
                min_bbox_size=0),
            rcnn=dict(
                assigner=dict(
                    type='mmdet.MaxIoUAssigner',
                    pos_iou_thr=0.5,
                    neg_iou_thr=0.5,
                    min_pos_iou=0.5,
                    match_low_quality=False,
                    iou_calculator=dict(type='RBboxOverlaps2D'),
                    ignore_iof_thr=-1),
                sampler=dict(
                    type='mmdet.RandomSampler',
                    num=512,
                    pos_fraction=0.25,
                    neg_pos_ub=-1,
                    add_gt_as_proposals=True),
                pos_weight=-1,
                debug=False)),
        test_cfg=dict(
            rpn=dict(
                nms_pre=2000,
                max_per_img=2000,
                nms=dict(type='nms', iou_threshold=0.8),
                min_bbox_size=0),
            rcnn=dict(
                nms_pre=2000,
                min_bbox_size=0,
                score_thr=0.05,
                nms=dict(type='nms_rotated', iou_threshold=0.1),
                max_per_img=2000))),
    feat_levels=(0, 1, 2, 3, 4))
# DroneVehicle: the same Oriented R-CNN with its 5 classes.
dronevehicle_head = copy.deepcopy(dota_head)
dronevehicle_head['detector']['roi_head']['bbox_head']['num_classes'] = 5

model = dict(
    type='SM3Det',
    data_preprocessor=dict(
        type='mmdet.DetDataPreprocessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        bgr_to_rgb=True,
        pad_size_divisor=32,
        boxtype2tensor=False),
    backbone=dict(
        type='ConvNeXtMoE',
        arch='tiny',
        drop_path_rate=0.1,
        layer_scale_init_value=1e-6,
        out_indices=(0, 1, 2, 3),
        moe_blocks=None,  # the even blocks of stages 2-4
        moe_cfg=dict(num_experts=8, top_k=2),
        init_cfg=dict(
            type='Pretrained', checkpoint=pretrained, prefix='backbone.')),
    neck=dict(
        type='mmdet.FPN',
        in_channels=[96, 192, 384, 768],
        out_channels=fpn_channels,
        start_level=0,
        add_extra_convs='on_output',
        num_outs=6),
    tasks=dict(
        sar=sar_head, dota=dota_head, dronevehicle=dronevehicle_head))
