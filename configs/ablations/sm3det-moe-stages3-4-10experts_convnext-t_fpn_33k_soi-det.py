# MoE size ablation: 10 experts, top-2, in the even blocks of stages 3-4.
_base_ = './sm3det-moe-stages3-4_convnext-t_fpn_33k_soi-det.py'

model = dict(backbone=dict(moe_cfg=dict(num_experts=10)))
