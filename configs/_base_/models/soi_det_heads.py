# The task heads of SOI-Det's parts: each is a stock mmdet / mmrotate
# detector config without backbone and neck, plus the levels of the shared
# P2-P7 pyramid it reads (`feat_levels`), i.e. one entry of SM3Det's
# `model.tasks`. A single-dataset model is the same detector with its own
# backbone and FPN (gfl_convnext-t_fpn.py, oriented-rcnn_convnext-t_fpn.py).
# A new head pair adds its entries here and assembles `model.tasks` from them.
import copy

_base_ = './convnext-t_fpn.py'

angle_version = 'le90'

gfl_sar = dict(  # GFL on P3-P7, horizontal boxes
    detector=dict(
        type='mmdet.GFL',
        # GFLHead builds unscoped mmdet parts (its DistancePointBBoxCoder).
        _scope_='mmdet',
        bbox_head=dict(
            type='mmdet.GFLHead',
            num_classes=6,
            in_channels=_base_.fpn_channels,
            stacked_convs=4,
            feat_channels=_base_.fpn_channels,
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
            loss_dfl=dict(
                type='mmdet.DistributionFocalLoss', loss_weight=0.25),
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
oriented_rcnn_dota = dict(
    detector=dict(
        type='mmdet.FasterRCNN',
        rpn_head=dict(
            type='OrientedRPNHead',
            in_channels=_base_.fpn_channels,
            feat_channels=_base_.fpn_channels,
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
                type='mmdet.CrossEntropyLoss',
                use_sigmoid=True,
                loss_weight=1.0),
            loss_bbox=dict(
                type='mmdet.SmoothL1Loss',
                beta=0.1111111111111111,
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
                out_channels=_base_.fpn_channels,
                featmap_strides=[4, 8, 16, 32]),
            bbox_head=dict(
                type='mmdet.Shared2FCBBoxHead',
                predict_box_type='rbox',
                in_channels=_base_.fpn_channels,
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
oriented_rcnn_dronevehicle = copy.deepcopy(oriented_rcnn_dota)
oriented_rcnn_dronevehicle['detector']['roi_head']['bbox_head'][
    'num_classes'] = 5

# SM3Det's and the joint baselines' heads (Table 1): one per SOI-Det part.
soi_det_tasks = dict(
    sar=gfl_sar,
    dota=oriented_rcnn_dota,
    dronevehicle=oriented_rcnn_dronevehicle)
