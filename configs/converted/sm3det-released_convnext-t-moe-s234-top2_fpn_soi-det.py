# The authors' SM3Det ConvNeXt-T of Table 1 (their local_configs/
# main_SM3Det.py): 8 experts, top-2, in the even blocks of the last three
# stages (0-based stages 1-3), noisy cosine gating; their MultitaskFPN is
# this FPN (P2-P7). Convert their checkpoint, then test on SOI-Det:
#   python tools/model_converters/sm3det_original_to_sm3det.py \
#       iter_33468.pth CONFIG converted.pth
#   python tools/test.py CONFIG converted.pth
_base_ = [
    '../sm3det/sm3det_convnext-t_fpn_33k_soi-det.py',
    './_base_/sm3det_original_heads.py',
]

model = dict(
    backbone=dict(
        init_cfg=None,  # the converted checkpoint holds every weight
        moe_blocks=[[], [0, 2], [0, 2, 4, 6, 8], [0, 2]],
        moe_cfg=dict(num_experts=8, top_k=2)),
    tasks=_base_.original_tasks)
