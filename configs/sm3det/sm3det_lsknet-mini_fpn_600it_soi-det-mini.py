# SM3Det-mini with a LSKNet backbone (the 'mini' size: depths 1/1/2/1,
# MoE with 4 experts, top-2, in the even blocks of stages 2-4, from scratch)
# on SOI-Det-mini; everything else as
# sm3det_convnext-mini_fpn_600it_soi-det-mini.py.
_base_ = [
    './sm3det_convnext-mini_fpn_600it_soi-det-mini.py',
    '../_base_/models/moe_backbones.py',
]

model = _base_.lsknet_mini
