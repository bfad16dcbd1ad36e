# SM3Det with ConvNeXt-L (backbone scale ablation): MoE in the even blocks of
# stages 2-4, i.e. blocks 0, 2, ..., 26 of stage 3. The paper's 770M params
# fit 6 experts (769.4M; 8 experts would give 982M), so L uses 6, top-2.
_base_ = [
    './sm3det_convnext-t_fpn_33k_soi-det.py',
    '../_base_/models/convnext_sizes.py',
]

model = dict(
    backbone=dict(_base_.convnext_l.backbone, moe_cfg=dict(num_experts=6)),
    neck=_base_.convnext_l.neck)
