# One of the "3 separate models" (Table 1, first row): Oriented R-CNN on the
# DroneVehicle part alone (5 classes).
_base_ = [
    '../_base_/models/oriented-rcnn_convnext-t_fpn.py',
    '../_base_/datasets/dronevehicle.py',
    '../_base_/schedules/soi_det_33k.py',
    '../_base_/default_runtime.py',
]

model = dict(roi_head=dict(bbox_head=dict(num_classes=5)))

images_per_step = 16  # the recipe's 8 GPUs x 2 images of one part
