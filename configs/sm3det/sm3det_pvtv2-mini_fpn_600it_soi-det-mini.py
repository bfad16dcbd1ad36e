# SM3Det-mini with a PVT-v2 backbone (the 'mini' size: depths 1/1/2/1,
# MoE with 4 experts, top-2, in the even blocks of stages 2-4, from scratch)
# on SOI-Det-mini; everything else as
# sm3det_convnext-mini_fpn_600it_soi-det-mini.py.
_base_ = [
    './sm3det_convnext-mini_fpn_600it_soi-det-mini.py',
    '../_base_/models/moe_backbones.py',
]

model = _base_.pvtv2_mini
