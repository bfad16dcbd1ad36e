# SOI-Det-mini: the built-in procedurally drawn stand-in for SOI-Det
# (tools/misc/generate_soi_det_mini.py writes it to data/soi_det_mini/ with the
# real layout and formats). Same parts, pipelines and 2:1:1 batches as
# soi_det.py; only the data root, the image size (256) and the workers change.
_base_ = './soi_det.py'

data_root = 'data/soi_det_mini/'
image_size = 256


def _mini(part, dataset):
    """A soi_det.py dataset read from the mini root, resized to
    image_size."""
    square = (image_size, image_size)
    pipeline = [
        dict(step, scale=square) if step['type'] == 'mmdet.Resize' else step
        for step in dataset['pipeline']
    ]
    return dict(dataset, data_root=f'{data_root}{part}/', pipeline=pipeline)


sar_train = _mini('sar', _base_.sar_train)
dota_train = _mini('dota', _base_.dota_train)
dronevehicle_train = _mini('dronevehicle', _base_.dronevehicle_train)
sar_test = _mini('sar', _base_.sar_test)
dota_test = _mini('dota', _base_.dota_test)
dronevehicle_test = _mini('dronevehicle', _base_.dronevehicle_test)
sar_train_pipeline, sar_test_pipeline = sar_train['pipeline'], sar_test[
    'pipeline']
dota_train_pipeline = dota_train['pipeline']
dronevehicle_train_pipeline = dronevehicle_train['pipeline']
obb_test_pipeline = dota_test['pipeline']

train_dataloader = dict(
    num_workers=2,
    dataset=dict(datasets=[sar_train, dota_train, dronevehicle_train]))
val_dataloader = dict(
    num_workers=2,
    dataset=dict(datasets=[sar_test, dota_test, dronevehicle_test]))
test_dataloader = val_dataloader
single_part_loader = dict(batch_size=4)
