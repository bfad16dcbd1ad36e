# Routing ablation: SM3Det-T with image-level instead of grid-level routing
# (one top-2 choice of the 8 experts per image, from its pooled features;
# same experts and placement).
_base_ = '../sm3det/sm3det_convnext-t_fpn_33k_soi-det.py'

model = dict(backbone=dict(moe_cfg=dict(routing='image')))
