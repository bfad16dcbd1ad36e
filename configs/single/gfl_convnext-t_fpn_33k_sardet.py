# One of the "3 separate models" (Table 1, first row): mmdet's GFL with a
# dense ConvNeXt-T and its own FPN (P3-P7) on the SAR part alone.
_base_ = [
    '../_base_/models/gfl_convnext-t_fpn.py',
    '../_base_/datasets/sardet.py',
    '../_base_/schedules/soi_det_33k.py',
    '../_base_/default_runtime.py',
]

images_per_step = 16  # the recipe's 8 GPUs x 2 images of one part
