# mmdet's GFL with a dense ConvNeXt-T and its own FPN (P3-P7): the SAR model
# of the "3 separate models" baseline, with the SM3Det SAR head's settings.
_base_ = './sm3det_convnext-t_fpn.py'

gfl = _base_.sar_head.detector
model = dict(
    _delete_=True,
    type='mmdet.GFL',
    _scope_='mmdet',
    data_preprocessor=dict(_base_.model.data_preprocessor,
                           boxtype2tensor=True),
    backbone=dict(_base_.model.backbone, type='mmrotate.ConvNeXtMoE',
                  moe_blocks=[]),
    neck=dict(_base_.model.neck, start_level=1, num_outs=5),
    bbox_head=gfl.bbox_head,
    train_cfg=gfl.train_cfg,
    test_cfg=gfl.test_cfg)
