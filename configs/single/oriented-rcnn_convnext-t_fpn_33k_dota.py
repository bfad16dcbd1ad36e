# One of the "3 separate models" (Table 1, first row): MMRotate's Oriented
# R-CNN (le90) with a dense ConvNeXt-T and its own FPN (P2-P6) on the DOTA
# part alone.
_base_ = [
    '../_base_/models/oriented-rcnn_convnext-t_fpn.py',
    '../_base_/datasets/dota.py',
    '../_base_/schedules/soi_det_33k.py',
    '../_base_/default_runtime.py',
]

images_per_step = 16  # the recipe's 8 GPUs x 2 images of one part
