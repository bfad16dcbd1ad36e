# Simple joint training on SOI-Det-mini: SM3Det-mini's structure with a dense
# ConvNeXt-mini, no DSO, and batches drawn at random from the three parts.
_base_ = '../sm3det/sm3det-no-dso_convnext-mini_fpn_600it_soi-det-mini.py'

model = dict(backbone=dict(moe_blocks=[]))
train_dataloader = dict(
    sampler=dict(_delete_=True, type='InfiniteSampler', shuffle=True))
# A random batch may lack a dataset, whose head then gets no gradient.
find_unused_parameters = True
