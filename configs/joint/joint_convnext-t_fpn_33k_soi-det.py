# Simple joint training (Table 1, second row): the SM3Det structure with a
# dense ConvNeXt-T, no DSO, and batches drawn at random from the three
# datasets (no fixed 2:1:1 ratio).
_base_ = [
    '../_base_/models/joint_convnext-t_fpn.py',
    '../_base_/datasets/soi_det.py',
    '../_base_/schedules/soi_det_33k.py',
    '../_base_/default_runtime.py',
]

train_dataloader = dict(
    sampler=dict(_delete_=True, type='InfiniteSampler', shuffle=True))
# A random batch may lack a dataset, whose head then gets no gradient.
find_unused_parameters = True
