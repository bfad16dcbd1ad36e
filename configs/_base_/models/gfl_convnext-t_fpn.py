# mmdet's GFL with the dense ConvNeXt-T and its own FPN (P3-P7): the SAR model
# of the "3 separate models" baseline, SM3Det's SAR head as a whole detector
# (a StockDetector: mmdet's GFL config with these changes).
_base_ = './soi_det_heads.py'

model = dict(
    _base_.gfl_sar.detector,
    data_preprocessor=dict(_base_.det_data_preprocessor, boxtype2tensor=True),
    # GFL builds under mmdet's scope (_scope_), hence the scoped backbone.
    backbone=dict(_base_.convnext_t, type='mmrotate.ConvNeXtMoE'),
    neck=dict(_base_.fpn, start_level=1, num_outs=5))
