# SM3Det (Table 1, last row): grid-level MoE ConvNeXt-T (8 experts, top-2,
# even blocks of stages 2-4) + one FPN + GFL / Oriented R-CNN / Oriented
# R-CNN heads, trained with DSO on SOI-Det at 2:1:1, 32 images per optimizer
# step (8 GPUs x 4 images), 33,468 steps (docs/method.md section 5). On fewer
# GPUs each step accumulates 32 / (GPUs x 4) iterations and the iteration
# counts are scaled to match (ImagesPerStepRunner):
#   bash tools/dist_train.sh \
#       configs/sm3det/sm3det_convnext-t_fpn_33k_soi-det.py 8  # or 4, 2
#   python tools/train.py configs/sm3det/sm3det_convnext-t_fpn_33k_soi-det.py
_base_ = [
    '../_base_/models/sm3det_convnext-t_fpn.py',
    '../_base_/datasets/soi_det.py',
    '../_base_/schedules/soi_det_33k.py',
    '../_base_/default_runtime.py',
    '../_base_/dso.py',
]

optim_wrapper = _base_.dso_optim_wrapper
custom_hooks = [_base_.dso_hook]
