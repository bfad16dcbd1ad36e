# The joint baselines' model (Table 1: simple joint training, DA, UniDet,
# uncertainty weighting): SM3Det's structure (sm3det_convnext-t_fpn.py) with
# the dense ConvNeXt-T, one FPN giving P2-P7 and one head per SOI-Det part.
_base_ = './soi_det_heads.py'

model = dict(
    type='SM3Det',
    data_preprocessor=_base_.det_data_preprocessor,
    backbone=_base_.convnext_t,
    neck=_base_.fpn,
    tasks=_base_.soi_det_tasks)
