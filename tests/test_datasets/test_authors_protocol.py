"""The authors' protocol (docs/authors_protocol.md), rule by rule, on
hand-made samples, and its config on SOI-Det-mini."""
import os.path as osp

import cv2
import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.logging import MMLogger
from mmengine.optim import build_optim_wrapper
from mmengine.registry import PARAM_SCHEDULERS, init_default_scope
from mmrotate.registry import DATASETS, TRANSFORMS
from mmrotate.structures import RotatedBoxes

from sm3det.datasets import SeededConcatDataset, SeededIndex
from repository import REPO_ROOT

AUTHORS_CONFIG = osp.join(
    REPO_ROOT,
    'configs/sm3det/sm3det_convnext-t_fpn_33k_soi-det_authors-protocol.py')
PAPER_CONFIG = osp.join(REPO_ROOT,
                        'configs/sm3det/sm3det_convnext-t_fpn_33k_soi-det.py')
BIG = '10 10 60 10 60 40 10 40'  # 50 x 30 px
THIN = '10 10 60 10 60 11.5 10 11.5'  # 50 x 1.5 px
SMALL = '40 40 44 40 44 44 40 44'  # 4 x 4 px


def part_folder(root, annotations, suffix='png'):
    """{stem: txt content} as annfiles/ with a 100x80 image per stem."""
    for sub in ('images', 'annfiles'):
        (root / sub).mkdir(parents=True)
    for stem, text in annotations.items():
        (root / 'annfiles' / f'{stem}.txt').write_text(text)
        cv2.imwrite(
            str(root / 'images' / f'{stem}.{suffix}'),
            np.full((80, 100, 3), 128, np.uint8))
    return root


def build(type_, root, test_mode=False, pipeline=(), **kwargs):
    return DATASETS.build(
        dict(
            type=type_,
            data_root=f'{root}/',
            ann_file='annfiles/',
            data_prefix=dict(img_path='images/'),
            test_mode=test_mode,
            pipeline=list(pipeline),
            **kwargs))


def num_objects(dataset):
    return {
        dataset.get_data_info(i)['img_id']:
        len(dataset.get_data_info(i)['instances'])
        for i in range(len(dataset))
    }


@pytest.mark.parametrize('type_, suffix, name',
                         [('SOIDOTADataset', 'png', 'plane'),
                          ('DroneVehicleDataset', 'jpg', 'car')])
def test_polygon_under_2_px_dropped_at_load_only_when_asked(
        tmp_path, type_, suffix, name):
    part_folder(tmp_path, {'a': f'{BIG} {name} 0\n{THIN} {name} 0\n'}, suffix)
    for test_mode in (False, True):
        assert num_objects(build(type_, tmp_path, test_mode)) == dict(a=2)
        assert num_objects(
            build(type_, tmp_path, test_mode, min_polygon_side=2)) == dict(a=1)
    # The side of the minimum-area rectangle counts, not the x/y extent:
    # a 1.5 px wide bar at 45 degrees spans 36 px in x and in y.
    c, d = 25 / np.sqrt(2), 0.75 / np.sqrt(2)
    diagonal = np.array([[-c - d, -c + d], [c - d, c + d], [c + d, c - d],
                         [-c + d, -c - d]]) + 40
    (tmp_path / 'annfiles' /
     'a.txt').write_text(' '.join(f'{v:.3f}'
                                  for v in diagonal.ravel()) + f' {name} 0\n')
    assert num_objects(build(type_, tmp_path, min_polygon_side=2)) == dict(a=0)
    assert num_objects(build(type_, tmp_path, min_polygon_side=1)) == dict(a=1)


def rotated_sample(boxes, labels, shape=(100, 100)):
    return dict(
        img=np.zeros((*shape, 3), np.uint8),
        img_shape=shape,
        gt_bboxes=RotatedBoxes(torch.tensor(boxes, dtype=torch.float32)),
        gt_bboxes_labels=np.array(labels, np.int64),
        gt_ignore_flags=np.zeros(len(labels), bool))


def test_box_of_4_px_dropped_after_rotation():
    init_default_scope('mmrotate')
    rotate = TRANSFORMS.build(dict(type='RandomRotate', prob=1.0))
    box_filter = TRANSFORMS.build(dict(type='FilterSmallOrOutsideBoxes'))
    boxes = [
        [50, 50, 4, 30, 0.2],  # 4 px wide: dropped
        [50, 50, 5, 30, 0.2],  # 5 px: dropped (the authors keep > 5)
        [50, 50, 6, 30, 0.2],  # kept
        [98, 50, 20, 20, 0.0],  # centre leaves the image for most angles
    ]
    np.random.seed(0)
    results = box_filter(rotate(rotated_sample(boxes, [0, 1, 2, 3])))
    assert results['gt_bboxes_labels'].tolist() in ([2], [2, 3])
    centres = results['gt_bboxes'].centers
    assert ((centres > 0) & (centres < 100)).all()
    assert results['gt_ignore_flags'].shape == (len(results['gt_bboxes']), )
    # Unrotated samples are filtered too (the authors' rule: every sample).
    results = box_filter(rotated_sample(boxes, [0, 1, 2, 3]))
    assert results['gt_bboxes_labels'].tolist() == [2, 3]
    assert box_filter(rotated_sample([[50, 50, 4, 30, 0.2]], [0])) is None


def test_emptied_image_replaced_by_one_of_the_same_dataset(tmp_path):
    init_default_scope('mmrotate')
    pipeline = [
        dict(type='mmdet.LoadImageFromFile'),
        dict(type='mmdet.LoadAnnotations', with_bbox=True, box_type='qbox'),
        dict(type='ConvertBoxType', box_type_mapping=dict(gt_bboxes='rbox')),
        dict(type='FilterSmallOrOutsideBoxes', min_side=5),
    ]
    dota = build(
        'SOIDOTADataset',
        part_folder(tmp_path / 'dota', {
            'only_small': f'{SMALL} plane 0\n',
            'big': f'{BIG} plane 0\n'
        }),
        pipeline=pipeline)
    drone = build(
        'DroneVehicleDataset',
        part_folder(tmp_path / 'drone', {'other': f'{BIG} car 0\n'}, 'jpg'),
        pipeline=pipeline)
    concat = SeededConcatDataset(
        datasets=[dota, drone],
        ignore_keys=['classes', 'palette', 'dataset_name'])
    small = [dota.get_data_info(i)['img_id']
             for i in range(2)].index('only_small')
    assert dota.pipeline(dota.get_data_info(small)) is None
    for seed in range(10):
        sample = concat[SeededIndex(small, seed)]
        assert (sample['dataset_name'], sample['img_id']) == ('dota', 'big')


def test_empty_files_left_out_only_when_asked(tmp_path):
    log_file = tmp_path / 'load.log'
    MMLogger.get_instance('test_empty_files_left_out', log_file=str(log_file))
    part_folder(
        tmp_path / 'dota', {
            'objects': f'{BIG} plane 0\n',
            'background': '',
            'header_only': 'imagesource:GoogleEarth\n'
        })
    paper = build('SOIDOTADataset', tmp_path / 'dota', test_mode=True)
    assert sorted(
        num_objects(paper)) == ['background', 'header_only', 'objects']
    authors = build(
        'SOIDOTADataset',
        tmp_path / 'dota',
        test_mode=True,
        leave_out_empty_files=True)
    # Only 0-byte files, as the authors' os.path.getsize test.
    assert sorted(num_objects(authors)) == ['header_only', 'objects']
    assert authors.num_empty_files_left_out == 1
    assert ('[dota] left out 1 images whose annotation file is empty'
            in log_file.read_text())


def lr_per_iteration(config_path, num_iters):
    cfg = Config.fromfile(config_path)
    optim_wrapper = build_optim_wrapper(
        torch.nn.Linear(1, 1),
        dict(
            type='OptimWrapper',
            optimizer=cfg.optim_wrapper.optimizer.to_dict()))
    schedulers = [
        PARAM_SCHEDULERS.build(dict(s, optimizer=optim_wrapper.optimizer))
        for s in cfg.param_scheduler
    ]
    lrs = []
    for _ in range(num_iters):
        lrs.append(optim_wrapper.get_lr()['lr'][0])
        for scheduler in schedulers:
            scheduler.step()
    return np.array(lrs)


def test_authors_schedule_has_no_warm_up():
    authors = lr_per_iteration(AUTHORS_CONFIG, 22400)
    paper = lr_per_iteration(PAPER_CONFIG, 600)
    assert np.allclose(authors[:22312], 1e-4)
    assert np.allclose(authors[22312:], 1e-5)
    assert paper[0] == pytest.approx(1e-4 / 3)
    assert paper[550] == pytest.approx(1e-4)


def test_authors_config_builds_on_the_mini_data(mini_root):
    init_default_scope('mmrotate')
    cfg = Config.fromfile(AUTHORS_CONFIG)
    for loader in (cfg.train_dataloader, cfg.test_dataloader):
        for part, dataset in zip(('sar', 'dota', 'dronevehicle'),
                                 loader.dataset.datasets):
            dataset.data_root = osp.join(mini_root, part) + '/'
    train = DATASETS.build(cfg.train_dataloader.dataset)
    for part in train.datasets[1:]:
        assert part.min_polygon_side == 2 and part.leave_out_empty_files
        assert 'FilterSmallOrOutsideBoxes' in repr(part.pipeline)
        sample = part[0]
        assert len(sample['data_samples'].gt_instances) > 0
    test = DATASETS.build(cfg.test_dataloader.dataset)
    assert test.datasets[1].leave_out_empty_files
