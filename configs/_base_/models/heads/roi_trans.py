# RoI Transformer as an OBB task head of SM3Det (DOTA, DroneVehicle):
# MMRotate 1.x's stock RoI Transformer (roi-trans-le90_r50_fpn_1x_dota.py:
# an HBB RoI stage that learns rotated RoIs, then a rotated RoI stage) on
# P2-P6 of the shared pyramid. Entries of `model.tasks`; the `*_mini` ones
# are the same heads at SOI-Det-mini's scale (mini_scale.py: 64-channel FPN,
# narrow RoI heads, fewer proposals and RoIs).
import copy

roi_trans_dota = dict(
    detector=dict(
        type='mmdet.CascadeRCNN',
        rpn_head=dict(
            type='mmdet.RPNHead',
            in_channels=256,
            feat_channels=256,
            anchor_generator=dict(
                type='mmdet.AnchorGenerator',
                scales=[8],
                ratios=[0.5, 1.0, 2.0],
                strides=[4, 8, 16, 32, 64],
                use_box_type=True),
            bbox_coder=dict(
                type='DeltaXYWHHBBoxCoder',
                target_means=[0.0, 0.0, 0.0, 0.0],
                target_stds=[1.0, 1.0, 1.0, 1.0],
                use_box_type=True),
            loss_cls=dict(
                type='mmdet.CrossEntropyLoss',
                use_sigmoid=True,
                loss_weight=1.0),
            loss_bbox=dict(
                type='mmdet.SmoothL1Loss', beta=1.0 / 9.0, loss_weight=1.0)),
        roi_head=dict(
            type='mmdet.CascadeRoIHead',
            num_stages=2,
            stage_loss_weights=[1, 1],
            bbox_roi_extractor=[
                dict(
                    type='mmdet.SingleRoIExtractor',
                    roi_layer=dict(
                        type='RoIAlign', output_size=7, sampling_ratio=0),
                    out_channels=256,
                    featmap_strides=[4, 8, 16, 32]),
                dict(
                    type='RotatedSingleRoIExtractor',
                    roi_layer=dict(
                        type='RoIAlignRotated',
                        out_size=7,
                        sample_num=2,
                        clockwise=True),
                    out_channels=256,
                    featmap_strides=[4, 8, 16, 32]),
            ],
            bbox_head=[
                dict(
                    type='mmdet.Shared2FCBBoxHead',
                    predict_box_type='rbox',
                    in_channels=256,
                    fc_out_channels=1024,
                    roi_feat_size=7,
                    num_classes=15,
                    reg_predictor_cfg=dict(type='mmdet.Linear'),
                    cls_predictor_cfg=dict(type='mmdet.Linear'),
                    bbox_coder=dict(
                        type='DeltaXYWHTHBBoxCoder',
                        angle_version='le90',
                        norm_factor=2,
                        edge_swap=True,
                        target_means=(.0, .0, .0, .0, .0),
                        target_stds=(0.1, 0.1, 0.2, 0.2, 0.1),
                        use_box_type=True),
                    reg_class_agnostic=True,
                    loss_cls=dict(
                        type='mmdet.CrossEntropyLoss',
                        use_sigmoid=False,
                        loss_weight=1.0),
                    loss_bbox=dict(
                        type='mmdet.SmoothL1Loss', beta=1.0, loss_weight=1.0)),
                dict(
                    type='mmdet.Shared2FCBBoxHead',
                    predict_box_type='rbox',
                    in_channels=256,
                    fc_out_channels=1024,
                    roi_feat_size=7,
                    num_classes=15,
                    reg_predictor_cfg=dict(type='mmdet.Linear'),
                    cls_predictor_cfg=dict(type='mmdet.Linear'),
                    bbox_coder=dict(
                        type='DeltaXYWHTRBBoxCoder',
                        angle_version='le90',
                        norm_factor=None,
                        edge_swap=True,
                        proj_xy=True,
                        target_means=[0., 0., 0., 0., 0.],
                        target_stds=[0.05, 0.05, 0.1, 0.1, 0.05]),
                    reg_class_agnostic=False,
                    loss_cls=dict(
                        type='mmdet.CrossEntropyLoss',
                        use_sigmoid=False,
                        loss_weight=1.0),
                    loss_bbox=dict(
                        type='mmdet.SmoothL1Loss', beta=1.0, loss_weight=1.0))
            ]),
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
                nms=dict(type='nms', iou_threshold=0.7),
                min_bbox_size=0),
            rcnn=[
                dict(
                    assigner=dict(
                        type='mmdet.MaxIoUAssigner',
                        pos_iou_thr=0.5,
                        neg_iou_thr=0.5,
                        min_pos_iou=0.5,
                        match_low_quality=False,
                        ignore_iof_thr=-1,
                        iou_calculator=dict(type='RBbox2HBboxOverlaps2D')),
                    sampler=dict(
                        type='mmdet.RandomSampler',
                        num=512,
                        pos_fraction=0.25,
                        neg_pos_ub=-1,
                        add_gt_as_proposals=True),
                    pos_weight=-1,
                    debug=False),
                dict(
                    assigner=dict(
                        type='mmdet.MaxIoUAssigner',
                        pos_iou_thr=0.5,
                        neg_iou_thr=0.5,
                        min_pos_iou=0.5,
                        match_low_quality=False,
                        ignore_iof_thr=-1,
                        iou_calculator=dict(type='RBboxOverlaps2D')),
                    sampler=dict(
                        type='mmdet.RandomSampler',
                        num=512,
                        pos_fraction=0.25,
                        neg_pos_ub=-1,
                        add_gt_as_proposals=True),
                    pos_weight=-1,
                    debug=False)
            ]),
        test_cfg=dict(
            rpn=dict(
                nms_pre=2000,
                max_per_img=2000,
                nms=dict(type='nms', iou_threshold=0.7),
                min_bbox_size=0),
            rcnn=dict(
                nms_pre=2000,
                min_bbox_size=0,
                score_thr=0.05,
                nms=dict(type='nms_rotated', iou_threshold=0.1),
                max_per_img=2000))),
    feat_levels=(0, 1, 2, 3, 4))

roi_trans_dota_mini = copy.deepcopy(roi_trans_dota)
_detector = roi_trans_dota_mini['detector']
_detector['rpn_head'].update(in_channels=64, feat_channels=64)
for _extractor in _detector['roi_head']['bbox_roi_extractor']:
    _extractor['out_channels'] = 64
for _head in _detector['roi_head']['bbox_head']:
    _head.update(in_channels=64, fc_out_channels=256)
for _train in _detector['train_cfg']['rcnn']:
    _train['sampler']['num'] = 256
_detector['train_cfg']['rpn_proposal'].update(nms_pre=1000, max_per_img=500)
_detector['test_cfg']['rpn'].update(nms_pre=1000, max_per_img=500)
_detector['test_cfg']['rcnn']['max_per_img'] = 300

# DroneVehicle: the same heads with its 5 classes.
roi_trans_dronevehicle = copy.deepcopy(roi_trans_dota)
roi_trans_dronevehicle_mini = copy.deepcopy(roi_trans_dota_mini)
for _entry in (roi_trans_dronevehicle, roi_trans_dronevehicle_mini):
    for _head in _entry['detector']['roi_head']['bbox_head']:
        _head['num_classes'] = 5
del _detector, _extractor, _head, _train, _entry  # helpers, not config keys
