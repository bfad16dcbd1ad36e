# MoE placement ablation: 8 experts, top-2, in every block of every stage.
_base_ = '../sm3det/sm3det_convnext-t_fpn_33k_soi-det.py'

model = dict(
    backbone=dict(moe_blocks=[[0, 1, 2], [0, 1, 2],
                              list(range(9)), [0, 1, 2]]))
