# One of the "3 separate models" with a dense ConvNeXt-L (backbone scale
# ablation): mmdet's GFL on the SAR part.
_base_ = [
    './gfl_convnext-t_fpn_33k_sardet.py',
    '../_base_/models/convnext_sizes.py',
]

model = _base_.convnext_l
