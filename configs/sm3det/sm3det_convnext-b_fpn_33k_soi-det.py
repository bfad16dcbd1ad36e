# SM3Det with ConvNeXt-B (backbone scale ablation): MoE (8 experts, top-2) in
# the even blocks of stages 2-4, i.e. blocks 0, 2, ..., 26 of stage 3.
# Paper: 459M params, 51.33 overall mAP.
_base_ = [
    './sm3det_convnext-t_fpn_33k_soi-det.py',
    '../_base_/models/convnext_sizes.py',
]

model = _base_.convnext_b
