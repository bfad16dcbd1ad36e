# UniDet (Table 1): a partitioned detector (Zhou et al., CVPR 2022): shared
# backbone and neck, one head per dataset (the joint model; Table 1's 66M
# params say the heads stay whole, UniDet itself splits only the classifier),
# trained the UniDet way: datasets drawn with equal probability whatever their
# size, every GPU's batch of 4 from a single dataset (SingleSourceSampler).
_base_ = '../joint/joint_convnext-t_fpn_33k_soi-det.py'

train_dataloader = dict(
    sampler=dict(
        _delete_=True,
        type='SingleSourceSampler',
        batch_size=4,
        source_ratio=[1, 1, 1]))
# A GPU's step trains one dataset's head; DDP must skip the others' weights.
find_unused_parameters = True
