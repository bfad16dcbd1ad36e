# SM3Det with PVT-v2-B (PVT-v2-b2), one of the paper's other backbones: MoE
# (4 experts, top-2) in the FFN fc1 and fc2 of the even blocks of stages
# 2-4, everything else as sm3det_convnext-t_fpn_33k_soi-det.py (FPN, heads,
# DSO, 33k recipe). The backbone part: ../_base_/models/moe_backbones.py.
_base_ = [
    './sm3det_convnext-t_fpn_33k_soi-det.py',
    '../_base_/models/moe_backbones.py',
]

model = _base_.pvtv2_b
