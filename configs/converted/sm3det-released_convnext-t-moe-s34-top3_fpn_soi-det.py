# The authors' released SM3Det ConvNeXt-T (their configs/SM3Det/
# SM3Det_convnext_t.py): 8 experts, top-3, in the even blocks of the last two
# stages (0-based stages 2 and 3: blocks 0, 2, 4, 6, 8 and 0, 2), noisy
# cosine gating; their MultitaskFPN is this FPN (P2-P7). Convert their
# checkpoint (e.g. iter_33468.pth), then test on SOI-Det:
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
        moe_blocks=[[], [], [0, 2, 4, 6, 8], [0, 2]],
        moe_cfg=dict(num_experts=8, top_k=3)),
    tasks=_base_.original_tasks)
