# One of the "3 separate models" with a dense ConvNeXt-B (backbone scale
# ablation): Oriented R-CNN on the DOTA part.
_base_ = [
    './oriented-rcnn_convnext-t_fpn_33k_dota.py',
    '../_base_/models/convnext_sizes.py',
]

model = _base_.convnext_b
