# The sar part of SOI-Det-mini alone: for the separate-model baseline on
# the mini set.
# The part's datasets, pipelines and loader are soi_det_mini.py's
# (iteration based: use IterBasedTrainLoop).
_base_ = './soi_det_mini.py'

train_dataloader = dict(
    _delete_=True, **_base_.single_part_loader, dataset=_base_.sar_train)
val_dataloader = dict(dataset=dict(_delete_=True, **_base_.sar_test))
test_dataloader = val_dataloader
val_evaluator = dict(
    tasks=dict(_delete_=True, sar=_base_.evaluation_tasks.sar))
test_evaluator = val_evaluator
