# MMRotate's Oriented R-CNN (le90) with the dense ConvNeXt-T and its own FPN
# (P2-P6): the OBB models of the "3 separate models" baseline, SM3Det's DOTA
# head as a whole detector (a StockDetector: MMRotate's Oriented R-CNN config
# with these changes).
_base_ = './soi_det_heads.py'

model = dict(
    _base_.oriented_rcnn_dota.detector,
    data_preprocessor=_base_.det_data_preprocessor,
    backbone=_base_.convnext_t,
    neck=dict(_base_.fpn, add_extra_convs=False, num_outs=5))
