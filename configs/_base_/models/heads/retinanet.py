# RetinaNet as an HBB task head of SM3Det (SAR): mmdet's stock RetinaNet
# (retinanet_r50_fpn.py) on P3-P7 of the shared pyramid, 6 SAR classes.
# Entries of `model.tasks`; `retinanet_sar_mini` is the same head at
# SOI-Det-mini's scale (mini_scale.py: 64-channel FPN, two tower convs).
import copy

retinanet_sar = dict(
    detector=dict(
        type='mmdet.RetinaNet',
        _scope_='mmdet',  # RetinaHead builds unscoped mmdet parts
        bbox_head=dict(
            type='mmdet.RetinaHead',
            num_classes=6,
            in_channels=256,
            stacked_convs=4,
            feat_channels=256,
            anchor_generator=dict(
                type='mmdet.AnchorGenerator',
                octave_base_scale=4,
                scales_per_octave=3,
                ratios=[0.5, 1.0, 2.0],
                strides=[8, 16, 32, 64, 128]),
            bbox_coder=dict(
                type='mmdet.DeltaXYWHBBoxCoder',
                target_means=[.0, .0, .0, .0],
                target_stds=[1.0, 1.0, 1.0, 1.0]),
            loss_cls=dict(
                type='mmdet.FocalLoss',
                use_sigmoid=True,
                gamma=2.0,
                alpha=0.25,
                loss_weight=1.0),
            loss_bbox=dict(type='mmdet.L1Loss', loss_weight=1.0)),
        train_cfg=dict(
            assigner=dict(
                type='mmdet.MaxIoUAssigner',
                pos_iou_thr=0.5,
                neg_iou_thr=0.4,
                min_pos_iou=0,
                ignore_iof_thr=-1),
            # Focal loss weighs every anchor: no sampling.
            sampler=dict(type='mmdet.PseudoSampler'),
            allowed_border=-1,
            pos_weight=-1,
            debug=False),
        test_cfg=dict(
            nms_pre=1000,
            min_bbox_size=0,
            score_thr=0.05,
            nms=dict(type='nms', iou_threshold=0.5),
            max_per_img=100)),
    feat_levels=(1, 2, 3, 4, 5),
    boxtype2tensor=True)  # mmdet heads want tensor boxes

retinanet_sar_mini = copy.deepcopy(retinanet_sar)
retinanet_sar_mini['detector']['bbox_head'].update(
    in_channels=64, feat_channels=64, stacked_convs=2)
