# SM3Det, ConvNeXt-T (docs/method.md section 3): the ConvNeXt-T trunk with
# grid-level MoE layers (8 experts, top-2) in the even blocks of stages 2-4,
# one FPN giving P2-P7, and one head per dataset of SOI-Det. The joint
# baselines (joint_convnext-t_fpn.py) are the same model with the dense trunk.
_base_ = './soi_det_heads.py'

model = dict(
    type='SM3Det',
    data_preprocessor=_base_.det_data_preprocessor,
    # Every expert starts as the pretrained MLP of its block.
    backbone=dict(
        _base_.convnext_t,
        moe_blocks=None,  # the even blocks of stages 2-4
        moe_cfg=dict(num_experts=8, top_k=2)),
    neck=_base_.fpn,
    tasks=_base_.soi_det_tasks)
