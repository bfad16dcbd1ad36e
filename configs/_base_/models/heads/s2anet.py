# S2A-Net as an OBB task head of SM3Det (DOTA, DroneVehicle): MMRotate 1.x's
# stock S2A-Net (s2anet-le90_r50_fpn_1x_dota.py: an anchor-refinement head,
# then an alignment-convolution head) on P3-P7 of the shared pyramid.
# Entries of `model.tasks`; the `*_mini` ones are the same heads at
# SOI-Det-mini's scale (mini_scale.py: 64-channel FPN).
import copy

s2anet_dota = dict(
    detector=dict(
        type='RefineSingleStageDetector',
        bbox_head_init=dict(
            type='S2AHead',
            num_classes=15,
            in_channels=256,
            stacked_convs=2,
            feat_channels=256,
            anchor_generator=dict(
                type='FakeRotatedAnchorGenerator',
                angle_version='le90',
                scales=[4],
                ratios=[1.0],
                strides=[8, 16, 32, 64, 128]),
            bbox_coder=dict(
                type='DeltaXYWHTRBBoxCoder',
                angle_version='le90',
                norm_factor=None,
                edge_swap=True,
                proj_xy=True,
                target_means=(.0, .0, .0, .0, .0),
                target_stds=(1.0, 1.0, 1.0, 1.0, 1.0),
                use_box_type=False),
            loss_cls=dict(
                type='mmdet.FocalLoss',
                use_sigmoid=True,
                gamma=2.0,
                alpha=0.25,
                loss_weight=1.0),
            loss_bbox=dict(
                type='mmdet.SmoothL1Loss', beta=0.11, loss_weight=1.0)),
        bbox_head_refine=[
            dict(
                type='S2ARefineHead',
                num_classes=15,
                in_channels=256,
                stacked_convs=2,
                feat_channels=256,
                frm_cfg=dict(
                    type='AlignConv',
                    feat_channels=256,
                    kernel_size=3,
                    strides=[8, 16, 32, 64, 128]),
                anchor_generator=dict(
                    type='PseudoRotatedAnchorGenerator',
                    strides=[8, 16, 32, 64, 128]),
                bbox_coder=dict(
                    type='DeltaXYWHTRBBoxCoder',
                    angle_version='le90',
                    norm_factor=None,
                    edge_swap=True,
                    proj_xy=True,
                    target_means=(0.0, 0.0, 0.0, 0.0, 0.0),
                    target_stds=(1.0, 1.0, 1.0, 1.0, 1.0)),
                loss_cls=dict(
                    type='mmdet.FocalLoss',
                    use_sigmoid=True,
                    gamma=2.0,
                    alpha=0.25,
                    loss_weight=1.0),
                loss_bbox=dict(
                    type='mmdet.SmoothL1Loss', beta=0.11, loss_weight=1.0))
        ],
        train_cfg=dict(
            init=dict(
                assigner=dict(
                    type='mmdet.MaxIoUAssigner',
                    pos_iou_thr=0.5,
                    neg_iou_thr=0.4,
                    min_pos_iou=0,
                    ignore_iof_thr=-1,
                    iou_calculator=dict(type='RBboxOverlaps2D')),
                allowed_border=-1,
                pos_weight=-1,
                debug=False),
            refine=[
                dict(
                    assigner=dict(
                        type='mmdet.MaxIoUAssigner',
                        pos_iou_thr=0.5,
                        neg_iou_thr=0.4,
                        min_pos_iou=0,
                        ignore_iof_thr=-1,
                        iou_calculator=dict(type='RBboxOverlaps2D')),
                    allowed_border=-1,
                    pos_weight=-1,
                    debug=False)
            ],
            stage_loss_weights=[1.0]),
        test_cfg=dict(
            nms_pre=2000,
            min_bbox_size=0,
            score_thr=0.05,
            nms=dict(type='nms_rotated', iou_threshold=0.1),
            max_per_img=2000)),
    feat_levels=(1, 2, 3, 4, 5),
    # DSO's two sub-modules, as in the reference implementation; their loss
    # keys as RefineSingleStageDetector names them (loss_cls_init, ...).
    sub_modules=dict(bbox_head_init='*_init', bbox_head_refine='*_refine_*'))

s2anet_dota_mini = copy.deepcopy(s2anet_dota)
_detector = s2anet_dota_mini['detector']
_detector['bbox_head_init'].update(in_channels=64, feat_channels=64)
for _head in _detector['bbox_head_refine']:
    _head.update(in_channels=64, feat_channels=64)
    _head['frm_cfg']['feat_channels'] = 64
_detector['test_cfg'].update(nms_pre=1000, max_per_img=300)

# DroneVehicle: the same heads with its 5 classes.
s2anet_dronevehicle = copy.deepcopy(s2anet_dota)
s2anet_dronevehicle_mini = copy.deepcopy(s2anet_dota_mini)
for _entry in (s2anet_dronevehicle, s2anet_dronevehicle_mini):
    _entry['detector']['bbox_head_init']['num_classes'] = 5
    for _head in _entry['detector']['bbox_head_refine']:
        _head['num_classes'] = 5
del _detector, _head, _entry  # helpers, not config keys
