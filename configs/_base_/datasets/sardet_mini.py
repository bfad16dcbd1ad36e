# The sar part of SOI-Det-mini alone (sardet.py's loaders on soi_det_mini.py's
# data): for the separate-model baseline on the mini set.
_base_ = './soi_det_mini.py'

train_dataloader = dict(
    _delete_=True,
    batch_size=4,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=_base_.sar_train)
val_dataloader = dict(dataset=dict(_delete_=True, **_base_.sar_test))
test_dataloader = val_dataloader
val_evaluator = dict(tasks=dict(_delete_=True, sar=_base_.evaluation_tasks.sar))
test_evaluator = val_evaluator
