# MoE size ablation: 8 experts, top-3, in the even blocks of stages 3-4.
_base_ = './sm3det-moe-stages3-4_convnext-t_fpn_33k_soi-det.py'

model = dict(backbone=dict(moe_cfg=dict(top_k=3)))
