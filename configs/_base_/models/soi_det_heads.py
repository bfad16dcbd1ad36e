# The task heads of SOI-Det's parts: each is one entry of SM3Det's
# `model.tasks`, a stock mmdet / mmrotate detector plus the levels of the
# shared P2-P7 pyramid it reads (`feat_levels`). A `StockDetector` is the
# named config's `model` without backbone, neck and data preprocessor, with
# the changes written next to it merged in (sm3det/models/detectors/
# stock_detector.py); every stock head here reads 256 channels, the FPN's.
# A single-dataset model is the same detector with its own backbone and FPN
# (gfl_convnext-t_fpn.py, oriented-rcnn_convnext-t_fpn.py). A new head pair
# adds its entries here and assembles `model.tasks` from them (head_pairs/).
_base_ = './convnext-t_fpn.py'

# SM3Det's heads (Table 1) --------------------------------------------------
gfl_sar = dict(  # GFL on P3-P7, horizontal boxes, 6 SAR classes
    detector=dict(
        type='StockDetector',
        config='mmdet::gfl/gfl_r50_fpn_1x_coco.py',
        bbox_head=dict(num_classes=6)),
    feat_levels=(1, 2, 3, 4, 5),
    boxtype2tensor=True)  # mmdet's GFL and ATSS want tensor boxes
oriented_rcnn_dota = dict(  # Oriented R-CNN (le90) on P2-P6, 15 classes
    detector=dict(
        type='StockDetector',
        config='mmrotate::oriented_rcnn/oriented-rcnn-le90_r50_fpn_1x_dota.py'
    ),
    feat_levels=(0, 1, 2, 3, 4))
oriented_rcnn_dronevehicle = dict(
    oriented_rcnn_dota,
    detector=dict(
        oriented_rcnn_dota['detector'],
        roi_head=dict(bbox_head=dict(num_classes=5))))

# SM3Det's and the joint baselines' heads (Table 1): one per SOI-Det part.
soi_det_tasks = dict(
    sar=gfl_sar,
    dota=oriented_rcnn_dota,
    dronevehicle=oriented_rcnn_dronevehicle)

# The head pairs' other heads (configs/head_pairs/) --------------------------
# HBB heads for SAR on P2-P6 (R-CNNs) or P3-P7 (RetinaNet), 6 classes; mmdet
# heads want tensor boxes.
faster_rcnn_sar = dict(
    detector=dict(
        type='StockDetector',
        config='mmdet::_base_/models/faster-rcnn_r50_fpn.py',
        roi_head=dict(bbox_head=dict(num_classes=6))),
    feat_levels=(0, 1, 2, 3, 4),
    boxtype2tensor=True)
cascade_rcnn_sar = dict(  # three stages, IoU 0.5 / 0.6 / 0.7
    detector=dict(
        type='StockDetector',
        config='mmdet::_base_/models/cascade-rcnn_r50_fpn.py',
        roi_head=dict(
            bbox_head={
                '0': dict(num_classes=6),
                '1': dict(num_classes=6),
                '2': dict(num_classes=6)
            })),
    feat_levels=(0, 1, 2, 3, 4),
    boxtype2tensor=True)
retinanet_sar = dict(
    detector=dict(
        type='StockDetector',
        config='mmdet::_base_/models/retinanet_r50_fpn.py',
        bbox_head=dict(num_classes=6)),
    feat_levels=(1, 2, 3, 4, 5),
    boxtype2tensor=True)
# OBB heads for DOTA (the stock's 15 classes) and DroneVehicle (5 classes).
# RoI Transformer on P2-P6: an HBB RoI stage that learns rotated RoIs, then a
# rotated RoI stage.
roi_trans_dota = dict(
    detector=dict(
        type='StockDetector',
        config='mmrotate::roi_trans/roi-trans-le90_r50_fpn_1x_dota.py'),
    feat_levels=(0, 1, 2, 3, 4))
roi_trans_dronevehicle = dict(
    roi_trans_dota,
    detector=dict(
        roi_trans_dota['detector'],
        roi_head=dict(bbox_head={
            '0': dict(num_classes=5),
            '1': dict(num_classes=5)
        })))
# S2A-Net on P3-P7: an anchor-refinement head, then an alignment-convolution
# head. DSO's two sub-modules, as in the reference implementation; their loss
# keys as RefineSingleStageDetector names them (loss_cls_init, ...).
s2anet_dota = dict(
    detector=dict(
        type='StockDetector',
        config='mmrotate::s2anet/s2anet-le90_r50_fpn_1x_dota.py'),
    feat_levels=(1, 2, 3, 4, 5),
    sub_modules=dict(bbox_head_init='*_init', bbox_head_refine='*_refine_*'))
s2anet_dronevehicle = dict(
    s2anet_dota,
    detector=dict(
        s2anet_dota['detector'],
        bbox_head_init=dict(num_classes=5),
        bbox_head_refine={'0': dict(num_classes=5)}))
