# MoE placement ablation: 8 experts, top-2, in the even blocks of all four
# stages.
_base_ = '../sm3det/sm3det_convnext-t_fpn_33k_soi-det.py'

model = dict(
    backbone=dict(moe_blocks=[[0, 2], [0, 2], [0, 2, 4, 6, 8], [0, 2]]))
