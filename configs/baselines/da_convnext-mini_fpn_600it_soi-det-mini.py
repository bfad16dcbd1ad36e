# DA baseline at CPU scale: the mini joint model with domain-attentive SE
# adapters after the last block of every stage (see
# da_convnext-t_fpn_33k_soi-det.py).
_base_ = '../joint/joint_convnext-mini_fpn_600it_soi-det-mini.py'

model = dict(backbone=dict(type='ConvNeXtDA', num_domains=3, reduction=16))
