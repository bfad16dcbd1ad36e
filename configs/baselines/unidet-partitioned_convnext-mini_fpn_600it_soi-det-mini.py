# UniDet baseline at CPU scale: the mini joint model trained on single-dataset
# batches drawn dataset-balanced (see
# unidet-partitioned_convnext-t_fpn_33k_soi-det.py).
_base_ = '../joint/joint_convnext-mini_fpn_600it_soi-det-mini.py'

train_dataloader = dict(
    sampler=dict(
        _delete_=True,
        type='SingleSourceSampler',
        batch_size=4,
        source_ratio=[1, 1, 1]))
find_unused_parameters = True
