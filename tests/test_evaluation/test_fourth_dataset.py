"""A fourth dataset needs configs only: dataset, metric, summary table and
results table take its name, classes and display name from the config."""
import json
import os.path as osp

import cv2
import numpy as np
from mmdet.structures.bbox import HorizontalBoxes
from mmengine.config import Config
from mmrotate.registry import DATASETS, METRICS
from mmrotate.structures.bbox import RotatedBoxes
from test_soi_det_metric import (DOTA_CLASSES, DRONE_CLASSES, SAR_CLASSES,
                                 data_sample)

from sm3det.analysis.results_table import (load_work_dir, pooled_group,
                                           result_rows)
from sm3det.evaluation import display_names, format_summary_markdown

# SOI-Det's evaluator plus a made-up oriented-box dataset.
FOURTH_TASK_CONFIG = """
_base_ = '{root}/configs/_base_/datasets/soi_det.py'
hrsc_classes = ('ship', 'submarine')
val_evaluator = dict(tasks=dict(hrsc=dict(
    box_type='rbox', classes=hrsc_classes, display_name='HRSC')))
test_evaluator = val_evaluator
"""


def write_config(tmp_path, repo_root):
    path = tmp_path / 'four_parts.py'
    path.write_text(FOURTH_TASK_CONFIG.format(root=repo_root))
    return str(path)


def test_metric_and_tables_with_a_fourth_task(tmp_path, repo_root,
                                              random_rotated_set,
                                              random_horizontal_set):
    cfg = Config.fromfile(write_config(tmp_path, repo_root))
    tasks = cfg.test_evaluator.tasks
    assert list(tasks) == ['sar', 'dota', 'dronevehicle', 'hrsc']
    metric = METRICS.build(cfg.test_evaluator)
    rng = np.random.default_rng(0)
    parts = dict(
        sar=(SAR_CLASSES, HorizontalBoxes, random_horizontal_set),
        dota=(DOTA_CLASSES, RotatedBoxes, random_rotated_set),
        dronevehicle=(DRONE_CLASSES, RotatedBoxes, random_rotated_set),
        hrsc=(('ship', 'submarine'), RotatedBoxes, random_rotated_set))
    for name, (classes, box_type, images) in parts.items():
        metric.process({}, [
            data_sample(name, f'{name}{i}', image, box_type)
            for i, image in enumerate(images(rng, 4, len(classes)))
        ])
    metrics = metric.evaluate(size=16)
    assert 0 < metrics['soi_det/hrsc/mAP'] <= 1
    # The table shows the fourth task under its configured name.
    table = format_summary_markdown(metrics, display_names(tasks))
    assert table.splitlines()[0] == (
        '|  | overall | SAR | DOTA | DroneVehicle | HRSC |')

    # collect_results: one column per configured task, and the separate
    # models' overall row pooled with the config's class counts (6 + 2).
    runs = []
    for name, value in (('gfl_convnext-t_fpn_33k_sardet', ('sar', .6)),
                        ('hrsc-model', ('hrsc', .2))):
        work_dir = tmp_path / name
        work_dir.mkdir()
        (work_dir / 'test_metrics.json').write_text(
            json.dumps({f'soi_det/{value[0]}/mAP': value[1]}))
        runs.append(load_work_dir(str(work_dir)))
    rows = result_rows(runs, tasks=tasks)
    assert rows[1]['HRSC mAP'] == '20.00' and rows[1]['SAR mAP'] == '-'
    assert (pooled_group(runs, tasks)['overall',
                                      'mAP'] == (6 * .6 + 2 * .2) / 8)


def test_a_dataset_class_takes_a_new_dataset_name(tmp_path):
    image = np.full((32, 32, 3), 80, np.uint8)
    (tmp_path / 'images').mkdir()
    (tmp_path / 'annfiles').mkdir()
    cv2.imwrite(str(tmp_path / 'images' / 'P0001.png'), image)
    (tmp_path / 'annfiles' /
     'P0001.txt').write_text('4 4 20 4 20 12 4 12 submarine 0\n')
    dataset = DATASETS.build(
        dict(
            type='SOIDOTADataset',
            dataset_name='hrsc',
            data_root=str(tmp_path),
            ann_file='annfiles/',
            data_prefix=dict(img_path='images/'),
            metainfo=dict(classes=('ship', 'submarine')),
            pipeline=[]))
    assert dataset.metainfo['dataset_name'] == 'hrsc'
    (sample, ) = dataset
    assert sample['dataset_name'] == 'hrsc'
    assert [i['bbox_label'] for i in sample['instances']] == [1]
    assert osp.basename(sample['img_path']) == 'P0001.png'
