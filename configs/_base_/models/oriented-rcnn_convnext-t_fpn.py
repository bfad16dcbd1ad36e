# MMRotate's Oriented R-CNN (le90) with a dense ConvNeXt-T and its own FPN
# (P2-P6): the OBB models of the "3 separate models" baseline.
_base_ = './sm3det_convnext-t_fpn.py'

oriented_rcnn = _base_.dota_head.detector
model = dict(
    _delete_=True,
    type='mmdet.FasterRCNN',
    data_preprocessor=_base_.model.data_preprocessor,
    backbone=dict(_base_.model.backbone, moe_blocks=[]),
    neck=dict(_base_.model.neck, add_extra_convs=False, num_outs=5),
    rpn_head=oriented_rcnn.rpn_head,
    roi_head=oriented_rcnn.roi_head,
    train_cfg=oriented_rcnn.train_cfg,
    test_cfg=oriented_rcnn.test_cfg)
