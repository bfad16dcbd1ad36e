# Oriented R-CNN at CPU scale: oriented-rcnn_convnext-t_fpn.py at
# SOI-Det-mini's scale (mini_scale.py: ConvNeXt-mini from scratch, 64-channel
# FPN, narrow heads). The OBB models of the "3 separate models" baseline on
# SOI-Det-mini.
_base_ = ['./oriented-rcnn_convnext-t_fpn.py', './mini_scale.py']

model = dict(_base_.convnext_mini, **_base_.oriented_rcnn_mini)
