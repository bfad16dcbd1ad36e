# DA (Table 1): simple joint training with domain-attentive SE adapters
# (Wang et al., CVPR 2019) in the dense ConvNeXt-T: after the last block of
# every stage, a bank of 3 SE adapters mixed per image by a learned domain
# attention (ConvNeXtDA).
_base_ = '../joint/joint_convnext-t_fpn_33k_soi-det.py'

model = dict(backbone=dict(type='ConvNeXtDA', num_domains=3, reduction=16))
