# SARDet-50K (SAR, horizontal boxes) alone: the GFL model of the "3 separate
# models" baseline.
# The part's datasets, pipelines and loader are soi_det.py's
# (iteration based: use IterBasedTrainLoop).
_base_ = './soi_det.py'

train_dataloader = dict(
    _delete_=True, **_base_.single_part_loader, dataset=_base_.sar_train)
val_dataloader = dict(dataset=dict(_delete_=True, **_base_.sar_test))
test_dataloader = val_dataloader
val_evaluator = dict(
    tasks=dict(_delete_=True, sar=_base_.evaluation_tasks.sar))
test_evaluator = val_evaluator
