# MoE placement ablation: 8 experts, top-2, in the even blocks of the last
# stage only (blocks {0,2} of stage 4).
_base_ = '../sm3det/sm3det_convnext-t_fpn_33k_soi-det.py'

model = dict(backbone=dict(moe_blocks=[[], [], [], [0, 2]]))
