# Cascade R-CNN as an HBB task head of SM3Det (SAR): mmdet's stock Cascade
# R-CNN (cascade-rcnn_r50_fpn.py, three stages at IoU 0.5 / 0.6 / 0.7) on
# P2-P6 of the shared pyramid, 6 SAR classes. Entries of `model.tasks`;
# `cascade_rcnn_sar_mini` is the same head at SOI-Det-mini's scale
# (mini_scale.py: 64-channel FPN, narrow RoI heads, fewer proposals and RoIs).
import copy


def _stage(target_stds, iou):
    """One cascade stage: its box head and its training assigner/sampler."""
    bbox_head = dict(
        type='mmdet.Shared2FCBBoxHead',
        in_channels=256,
        fc_out_channels=1024,
        roi_feat_size=7,
        num_classes=6,
        bbox_coder=dict(
            type='mmdet.DeltaXYWHBBoxCoder',
            target_means=[0., 0., 0., 0.],
            target_stds=target_stds),
        reg_class_agnostic=True,
        loss_cls=dict(
            type='mmdet.CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0),
        loss_bbox=dict(type='mmdet.SmoothL1Loss', beta=1.0, loss_weight=1.0))
    train_cfg = dict(
        assigner=dict(
            type='mmdet.MaxIoUAssigner',
            pos_iou_thr=iou,
            neg_iou_thr=iou,
            min_pos_iou=iou,
            match_low_quality=False,
            ignore_iof_thr=-1),
        sampler=dict(
            type='mmdet.RandomSampler',
            num=512,
            pos_fraction=0.25,
            neg_pos_ub=-1,
            add_gt_as_proposals=True),
        pos_weight=-1,
        debug=False)
    return bbox_head, train_cfg


_stages = [
    _stage([0.1, 0.1, 0.2, 0.2], 0.5),
    _stage([0.05, 0.05, 0.1, 0.1], 0.6),
    _stage([0.033, 0.033, 0.067, 0.067], 0.7)
]
cascade_rcnn_sar = dict(
    detector=dict(
        type='mmdet.CascadeRCNN',
        _scope_='mmdet',
        rpn_head=dict(
            type='mmdet.RPNHead',
            in_channels=256,
            feat_channels=256,
            anchor_generator=dict(
                type='mmdet.AnchorGenerator',
                scales=[8],
                ratios=[0.5, 1.0, 2.0],
                strides=[4, 8, 16, 32, 64]),
            bbox_coder=dict(
                type='mmdet.DeltaXYWHBBoxCoder',
                target_means=[.0, .0, .0, .0],
                target_stds=[1.0, 1.0, 1.0, 1.0]),
            loss_cls=dict(
                type='mmdet.CrossEntropyLoss',
                use_sigmoid=True,
                loss_weight=1.0),
            loss_bbox=dict(
                type='mmdet.SmoothL1Loss', beta=1.0 / 9.0, loss_weight=1.0)),
        roi_head=dict(
            type='mmdet.CascadeRoIHead',
            num_stages=3,
            stage_loss_weights=[1, 0.5, 0.25],
            bbox_roi_extractor=dict(
                type='mmdet.SingleRoIExtractor',
                roi_layer=dict(
                    type='RoIAlign', output_size=7, sampling_ratio=0),
                out_channels=256,
                featmap_strides=[4, 8, 16, 32]),
            bbox_head=[head for head, _ in _stages]),
        train_cfg=dict(
            rpn=dict(
                assigner=dict(
                    type='mmdet.MaxIoUAssigner',
                    pos_iou_thr=0.7,
                    neg_iou_thr=0.3,
                    min_pos_iou=0.3,
                    match_low_quality=True,
                    ignore_iof_thr=-1),
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
            rcnn=[train for _, train in _stages]),
        test_cfg=dict(
            rpn=dict(
                nms_pre=1000,
                max_per_img=1000,
                nms=dict(type='nms', iou_threshold=0.7),
                min_bbox_size=0),
            rcnn=dict(
                score_thr=0.05,
                nms=dict(type='nms', iou_threshold=0.5),
                max_per_img=100))),
    feat_levels=(0, 1, 2, 3, 4),
    boxtype2tensor=True)  # mmdet heads want tensor boxes

cascade_rcnn_sar_mini = copy.deepcopy(cascade_rcnn_sar)
_detector = cascade_rcnn_sar_mini['detector']
_detector['rpn_head'].update(in_channels=64, feat_channels=64)
_detector['roi_head']['bbox_roi_extractor']['out_channels'] = 64
for _head in _detector['roi_head']['bbox_head']:
    _head.update(in_channels=64, fc_out_channels=256)
for _train in _detector['train_cfg']['rcnn']:
    _train['sampler']['num'] = 256
_detector['train_cfg']['rpn_proposal'].update(nms_pre=1000, max_per_img=500)
_detector['test_cfg']['rpn'].update(nms_pre=1000, max_per_img=500)
del _stages, _detector, _head, _train  # helpers, not config keys
