# MoE placement / size ablation: SM3Det-T with the MoE (8 experts, top-2) in
# the even blocks of the last two stages only (blocks {0,2,4,6,8} of stage 3,
# {0,2} of stage 4). The base of the experts x top-k configs.
_base_ = '../sm3det/sm3det_convnext-t_fpn_33k_soi-det.py'

model = dict(backbone=dict(moe_blocks=[[], [], [0, 2, 4, 6, 8], [0, 2]]))
