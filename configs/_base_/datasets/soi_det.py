# SOI-Det (SM3Det, docs/method.md sections 2, 5): three parts in one training
# stream, each keeping its own annotation format, box type and pipeline.
#   sar           SARDet-50K, SAR, horizontal boxes, COCO json, 6 classes
#   dota          DOTA-v1.0 800x800 patches (overlap 400), optical, oriented
#                 boxes (le90)
#   dronevehicle  DroneVehicle infrared (border cropped), oriented boxes (le90)
# Every batch holds 2 SAR : 1 DOTA : 1 DroneVehicle images (mmdet's
# MultiSourceSampler, iteration based: use IterBasedTrainLoop; SM3Det's
# resumable versions of both, seeded per draw). Every sample
# carries its part's tag in metainfo['dataset_name']. Layout: data/README.md.
data_root = 'data/soi_det/'
image_size = 800
backend_args = None

sar_classes = ('ship', 'aircraft', 'car', 'tank', 'bridge', 'harbor')
dota_classes = ('plane', 'baseball-diamond', 'bridge', 'ground-track-field',
                'small-vehicle', 'large-vehicle', 'ship', 'tennis-court',
                'basketball-court', 'storage-tank', 'soccer-ball-field',
                'roundabout', 'harbor', 'swimming-pool', 'helicopter')
dronevehicle_classes = ('car', 'truck', 'bus', 'van', 'freight car')

train_meta_keys = ('img_id', 'img_path', 'ori_shape', 'img_shape',
                   'scale_factor', 'flip', 'flip_direction', 'dataset_name')
test_meta_keys = ('img_id', 'img_path', 'ori_shape', 'img_shape',
                  'scale_factor', 'dataset_name')

# Images that are not 8-bit (16-bit or float SAR products) are stretched to
# 0-255 per image between their 1st and 99th percentiles; 8-bit images, as
# all of SARDet-100K, load unchanged (docs/sensor_inputs.md). One-channel
# images are repeated to 3 channels.
sar_scaling = dict(type='percentile', low=1.0, high=99.0)
# SAR: resize keeping the ratio, horizontal flip. No Pad: the model's data
# preprocessor pads each batch after normalisation, in training as in testing.
sar_train_pipeline = [
    dict(
        type='LoadImageOrSkip', scaling=sar_scaling,
        backend_args=backend_args),
    dict(type='mmdet.LoadAnnotations', with_bbox=True),
    dict(type='mmdet.Resize', scale=(image_size, image_size), keep_ratio=True),
    dict(type='mmdet.RandomFlip', prob=0.5),
    dict(type='mmdet.PackDetInputs', meta_keys=train_meta_keys),
]
sar_test_pipeline = [
    dict(
        type='LoadSensorImage', scaling=sar_scaling,
        backend_args=backend_args),
    dict(type='mmdet.Resize', scale=(image_size, image_size), keep_ratio=True),
    dict(type='mmdet.LoadAnnotations', with_bbox=True),
    dict(type='mmdet.PackDetInputs', meta_keys=test_meta_keys),
]


# Oriented parts: quadrilaterals -> le90 rotated boxes; horizontal, vertical
# and diagonal flips 0.25 each; random rotation that keeps near-square classes
# (given by label index) at right angles. Their images are 8-bit: one that is
# not stops with a message (no scaling set).
def _obb_train_pipeline(rect_obj_labels):
    return [
        dict(type='LoadImageOrSkip', backend_args=backend_args),
        dict(type='mmdet.LoadAnnotations', with_bbox=True, box_type='qbox'),
        dict(type='ConvertBoxType', box_type_mapping=dict(gt_bboxes='rbox')),
        dict(
            type='mmdet.Resize',
            scale=(image_size, image_size),
            keep_ratio=True),
        dict(
            type='mmdet.RandomFlip',
            prob=0.75,
            direction=['horizontal', 'vertical', 'diagonal']),
        dict(
            type='RandomRotate',
            prob=0.5,
            angle_range=180,
            rect_obj_labels=rect_obj_labels),
        dict(type='mmdet.PackDetInputs', meta_keys=train_meta_keys),
    ]


# DOTA's near-square classes: storage-tank (9) and roundabout (11).
dota_train_pipeline = _obb_train_pipeline(
    [dota_classes.index('storage-tank'),
     dota_classes.index('roundabout')])
dronevehicle_train_pipeline = _obb_train_pipeline(None)
obb_test_pipeline = [
    dict(type='LoadSensorImage', backend_args=backend_args),
    dict(type='mmdet.Resize', scale=(image_size, image_size), keep_ratio=True),
    dict(type='mmdet.LoadAnnotations', with_bbox=True, box_type='qbox'),
    dict(type='ConvertBoxType', box_type_mapping=dict(gt_bboxes='rbox')),
    dict(type='mmdet.PackDetInputs', meta_keys=test_meta_keys),
]

sar_train = dict(
    type='SARDetDataset',
    data_root=data_root + 'sar/',
    metainfo=dict(classes=sar_classes),
    ann_file='Annotations/train.json',
    data_prefix=dict(img_path='JPEGImages/train/'),
    filter_cfg=dict(filter_empty_gt=True),
    pipeline=sar_train_pipeline)
dota_train = dict(
    type='SOIDOTADataset',
    data_root=data_root + 'dota/',
    metainfo=dict(classes=dota_classes),
    ann_file='train/annfiles/',
    data_prefix=dict(img_path='train/images/'),
    filter_cfg=dict(filter_empty_gt=True),
    pipeline=dota_train_pipeline)
dronevehicle_train = dict(
    type='DroneVehicleDataset',
    data_root=data_root + 'dronevehicle/',
    metainfo=dict(classes=dronevehicle_classes),
    ann_file='train/labels/',
    data_prefix=dict(img_path='train/images/'),
    filter_cfg=dict(filter_empty_gt=True),
    pipeline=dronevehicle_train_pipeline)
sar_test = dict(
    sar_train,
    ann_file='Annotations/test.json',
    data_prefix=dict(img_path='JPEGImages/test/'),
    filter_cfg=None,
    test_mode=True,
    pipeline=sar_test_pipeline)
dota_test = dict(
    dota_train,
    ann_file='val/annfiles/',
    data_prefix=dict(img_path='val/images/'),
    filter_cfg=None,
    test_mode=True,
    pipeline=obb_test_pipeline)
dronevehicle_test = dict(
    dronevehicle_train,
    ann_file='test/labels/',
    data_prefix=dict(img_path='test/images/'),
    filter_cfg=None,
    test_mode=True,
    pipeline=obb_test_pipeline)

# The parts' metainfo differ by design (classes, palette, tag): ConcatDataset
# must not compare them. Its own metainfo is the first part's.
parts_differ_in = ['classes', 'palette', 'dataset_name']
train_dataloader = dict(
    batch_size=4,
    num_workers=4,
    persistent_workers=True,
    # batch_size images per batch, split by source_ratio (rank-aware, seeded).
    # mmdet's MultiSourceSampler that resumes at a position, each draw seeded.
    sampler=dict(
        type='ResumableMultiSourceSampler',
        batch_size=4,
        source_ratio=[2, 1, 1]),
    batch_sampler=None,  # an aspect-ratio batch sampler would break the ratio
    dataset=dict(
        type='SeededConcatDataset',
        ignore_keys=parts_differ_in,
        datasets=[sar_train, dota_train, dronevehicle_train]))
val_dataloader = dict(
    batch_size=1,
    num_workers=2,
    persistent_workers=True,
    drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type='ConcatDataset',
        ignore_keys=parts_differ_in,
        datasets=[sar_test, dota_test, dronevehicle_test]))
test_dataloader = val_dataloader

# One part alone (the "3 separate models" baseline, datasets/<part>.py): an
# infinite loader over that part's train set.
single_part_loader = dict(
    batch_size=2,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True))

# Per-part AP (COCO for hbox, rotated VOC-area for rbox) at IoU 0.50:0.95 and
# the overall mean over all 26 classes (docs/method.md section 6).
evaluation_tasks = dict(
    sar=dict(box_type='hbox', classes=sar_classes, display_name='SAR'),
    dota=dict(box_type='rbox', classes=dota_classes, display_name='DOTA'),
    dronevehicle=dict(
        box_type='rbox',
        classes=dronevehicle_classes,
        display_name='DroneVehicle'))
val_evaluator = dict(type='SOIDetMetric', tasks=evaluation_tasks)
test_evaluator = val_evaluator
