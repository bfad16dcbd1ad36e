# SARDet-50K (SAR, horizontal boxes) alone: the GFL model of the "3 separate
# models" baseline.
# The part's datasets and pipelines are soi_det.py's;
# batches hold this part only (iteration based: use IterBasedTrainLoop).
_base_ = './soi_det.py'

train_dataloader = dict(
    _delete_=True,
    batch_size=2,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=_base_.sar_train)
val_dataloader = dict(dataset=dict(_delete_=True, **_base_.sar_test))
test_dataloader = val_dataloader
val_evaluator = dict(tasks=dict(_delete_=True, sar=_base_.evaluation_tasks.sar))
test_evaluator = val_evaluator
