# DOTA-v1.0 patches (optical, oriented boxes) alone: the first Oriented R-CNN
# of the "3 separate models" baseline.
# The part's datasets, pipelines and loader are soi_det.py's
# (iteration based: use IterBasedTrainLoop).
_base_ = './soi_det.py'

train_dataloader = dict(
    _delete_=True, **_base_.single_part_loader, dataset=_base_.dota_train)
val_dataloader = dict(dataset=dict(_delete_=True, **_base_.dota_test))
test_dataloader = val_dataloader
val_evaluator = dict(
    tasks=dict(_delete_=True, dota=_base_.evaluation_tasks.dota))
test_evaluator = val_evaluator
