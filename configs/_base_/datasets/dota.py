# DOTA-v1.0 patches (optical, oriented boxes) alone: the first Oriented R-CNN
# of the "3 separate models" baseline.
# The part's datasets and pipelines are soi_det.py's;
# batches hold this part only (iteration based: use IterBasedTrainLoop).
_base_ = './soi_det.py'

train_dataloader = dict(
    _delete_=True,
    batch_size=2,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=_base_.dota_train)
val_dataloader = dict(dataset=dict(_delete_=True, **_base_.dota_test))
test_dataloader = val_dataloader
val_evaluator = dict(tasks=dict(_delete_=True, dota=_base_.evaluation_tasks.dota))
test_evaluator = val_evaluator
