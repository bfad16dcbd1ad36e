# SM3Det with ConvNeXt-B (backbone scale ablation): MoE (8 experts, top-2) in
# the even blocks of stages 2-4, i.e. blocks 0, 2, ..., 26 of stage 3.
_base_ = [
    './sm3det_convnext-t_fpn_33k_soi-det.py',
    '../_base_/models/convnext_sizes.py',
]

model = _base_.convnext_b
