"""SOIDetMetric over mixed SAR / DOTA / DroneVehicle samples."""
import contextlib
import io
import os.path as osp

import numpy as np
import pytest
import torch
from mmdet.structures import DetDataSample
from mmdet.structures.bbox import HorizontalBoxes
from mmengine.config import Config
from mmengine.structures import InstanceData
from mmrotate.registry import METRICS
from mmrotate.structures.bbox import RotatedBoxes
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

import sm3det  # noqa: F401  (compat fixes before mmrotate)
from sm3det.evaluation import (SOIDetMetric, display_names,
                               format_summary_markdown, pool_class_aps)

SAR_CLASSES = ('ship', 'aircraft', 'car', 'tank', 'bridge', 'harbor')
DOTA_CLASSES = ('plane', 'baseball-diamond', 'bridge', 'ground-track-field',
                'small-vehicle', 'large-vehicle', 'ship', 'tennis-court',
                'basketball-court', 'storage-tank', 'soccer-ball-field',
                'roundabout', 'harbor', 'swimming-pool', 'helicopter')
DRONE_CLASSES = ('car', 'truck', 'bus', 'van', 'freight car')
TASKS = dict(
    sar=dict(box_type='hbox', classes=SAR_CLASSES),
    dota=dict(box_type='rbox', classes=DOTA_CLASSES),
    dronevehicle=dict(box_type='rbox', classes=DRONE_CLASSES))


def data_sample(name, img_id, image, box_type=None):
    """A ``DetDataSample.to_dict()`` as the test loop hands it to metrics."""
    sample = DetDataSample(metainfo=dict(dataset_name=name, img_id=img_id))
    sample.pred_instances = InstanceData(
        bboxes=torch.from_numpy(image['dets']),
        scores=torch.from_numpy(image['scores']),
        labels=torch.from_numpy(image['labels']))
    if box_type is not None:
        sample.gt_instances = InstanceData(
            bboxes=box_type(torch.from_numpy(image['gts'])),
            labels=torch.from_numpy(image['gt_labels']))
        sample.ignored_instances = InstanceData(
            bboxes=box_type(torch.from_numpy(image['ignored'])),
            labels=torch.from_numpy(image['ignored_labels']))
    return sample.to_dict()


@pytest.fixture
def soi_det_samples(random_rotated_set, random_horizontal_set):
    rng = np.random.default_rng(1)
    sar = random_horizontal_set(rng, 8, len(SAR_CLASSES))
    dota = random_rotated_set(rng, 8, len(DOTA_CLASSES))
    drone = random_rotated_set(rng, 6, len(DRONE_CLASSES))
    return ([
        data_sample('sar', i, im, HorizontalBoxes) for i, im in enumerate(sar)
    ] + [
        data_sample('dota', f'P{i:04d}__800__0___0', im, RotatedBoxes)
        for i, im in enumerate(dota)
    ] + [
        data_sample('dronevehicle', f'{i:05d}', im, RotatedBoxes)
        for i, im in enumerate(drone)
    ])


def evaluate(metric, samples):
    metric.process({}, samples)
    return metric.compute_metrics(metric.results)


def test_hbox_part_equals_pycocotools(random_horizontal_set):
    images = random_horizontal_set(np.random.default_rng(2), 10, 3)
    metric = SOIDetMetric(tasks=dict(sar=TASKS['sar']))
    metrics = evaluate(metric, [
        data_sample('sar', 1000 + i, im, HorizontalBoxes)
        for i, im in enumerate(images)
    ])

    # pycocotools on its own, default parameters (maxDets 1/10/100).
    def xywh(box):
        return [
            float(box[0]),
            float(box[1]),
            float(box[2] - box[0]),
            float(box[3] - box[1])
        ]

    annotations, detections = [], []
    for i, im in enumerate(images):
        for boxes, labels, crowd in ((im['gts'], im['gt_labels'], 0),
                                     (im['ignored'], im['ignored_labels'], 1)):
            for box, label in zip(boxes, labels):
                annotations.append(
                    dict(
                        id=len(annotations) + 1,
                        image_id=1000 + i,
                        category_id=7 + int(label),
                        bbox=xywh(box),
                        area=xywh(box)[2] * xywh(box)[3],
                        iscrowd=crowd))
        detections += [
            dict(
                image_id=1000 + i,
                category_id=7 + int(label),
                bbox=xywh(box),
                score=float(score)) for box, score, label in zip(
                    im['dets'], im['scores'], im['labels'])
        ]
    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO()
        coco.dataset = dict(
            images=[dict(id=1000 + i) for i in range(len(images))],
            annotations=annotations,
            categories=[dict(id=7 + c, name=str(c)) for c in range(3)])
        coco.createIndex()
        coco_eval = COCOeval(coco, coco.loadRes(detections), 'bbox')
        coco_eval.evaluate()
        coco_eval.accumulate()
        coco_eval.summarize()
    ap, ap50, ap75 = coco_eval.stats[:3]

    assert 0.1 < ap < ap50 < 1
    assert metrics['sar/mAP'] == pytest.approx(ap, abs=1e-9)
    assert metrics['sar/AP50'] == pytest.approx(ap50, abs=1e-9)
    assert metrics['sar/AP75'] == pytest.approx(ap75, abs=1e-9)
    # A single dataset: the overall row is that dataset's.
    assert metrics['overall/mAP'] == pytest.approx(ap, abs=1e-9)


def test_three_datasets_and_overall_pooling_over_classes(soi_det_samples):
    metric = METRICS.build(dict(type='SOIDetMetric', tasks=TASKS))
    metric.process({}, soi_det_samples)
    # mmengine's own entry point: collects the results, adds the prefix.
    metrics = metric.evaluate(len(soi_det_samples))
    names = ('overall', 'sar', 'dota', 'dronevehicle')
    assert sorted(metrics) == sorted(f'soi_det/{n}/{m}' for n in names
                                     for m in ('mAP', 'AP50', 'AP75'))
    metrics = {k[len('soi_det/'):]: v for k, v in metrics.items()}
    # Overall = mean over every class with GT = class-count-weighted mean of
    # the datasets' means.
    classes_with_gt = {
        name:
        len({
            int(label)
            for s in soi_det_samples if s['dataset_name'] == name
            for label in s['gt_instances']['labels']
        })
        for name in names[1:]
    }
    for m in ('mAP', 'AP50', 'AP75'):
        pooled = sum(classes_with_gt[n] * metrics[f'{n}/{m}']
                     for n in names[1:]) / sum(classes_with_gt.values())
        assert metrics[f'overall/{m}'] == pytest.approx(pooled, abs=1e-12)
        assert 0.05 < metrics[f'overall/{m}'] < 1
    assert classes_with_gt['dota'] < len(DOTA_CLASSES)  # some are skipped


def test_overall_pooling_reproduces_the_papers_worked_check():
    # (6 x 60.64 + 15 x 46.47 + 5 x 48.87) / 26 = 50.20, and a class
    # without ground truth (NaN) changes nothing.
    sar = np.full((1, 6), 0.6064)
    dota = np.full((1, 16), 0.4647)
    dota[0, 15] = np.nan
    drone = np.full((1, 5), 0.4887)
    overall = pool_class_aps([sar, dota, drone])
    assert round(100 * overall[0], 2) == 50.20
    assert overall[0] == pytest.approx(
        (6 * 0.6064 + 15 * 0.4647 + 5 * 0.4887) / 26)
    # Not the mean of the three datasets (51.99).
    assert round(100 * (0.6064 + 0.4647 + 0.4887) / 3, 2) == 51.99


def test_results_split_across_two_ranks_give_the_same_numbers(soi_det_samples):
    whole = evaluate(SOIDetMetric(tasks=TASKS), soi_det_samples)
    # Each rank processes every second sample; mmengine's collect_results
    # interleaves the parts back.
    ranks = [SOIDetMetric(tasks=TASKS) for _ in range(2)]
    for rank, metric in enumerate(ranks):
        metric.process({}, soi_det_samples[rank::2])
    union = [
        r for pair in zip(ranks[0].results, ranks[1].results) for r in pair
    ]
    split = SOIDetMetric(tasks=TASKS).compute_metrics(union)
    assert split == pytest.approx(whole, abs=1e-12)
    # What travels between ranks is small: no rotated boxes, int8 outcomes.
    dota_result = next(r for r in union if r['task'] == 'dota')
    assert 'bboxes' not in dota_result
    assert dota_result['outcomes'].dtype == np.int8


def test_dota_task1_submission_files(tmp_path):
    # An axis-aligned box (angle 0) at (10, 20), 4 x 2: corners known.
    image = dict(
        dets=np.array([[10, 20, 4, 2, 0], [50, 50, 10, 10, 0.3]], np.float32),
        scores=np.array([0.5, 0.25], np.float32),
        labels=np.array([1, 14]))
    samples = [
        data_sample('dota', 'P0001__800__0___0', image),
        data_sample('dronevehicle', '00001',
                    dict(image, labels=np.array([0, 0]))),
        data_sample(
            'sar', 3,
            dict(
                image,
                dets=np.array([[0, 0, 5, 5]] * 2, np.float32),
                labels=np.array([0, 0])))
    ]
    metric = SOIDetMetric(
        tasks=TASKS, outfile_prefix=str(tmp_path / 'sub'), format_only=True)
    assert evaluate(metric, samples) == {}  # no GT needed, nothing evaluated

    dota_dir = tmp_path / 'sub' / 'dota'
    assert sorted(p.name
                  for p in dota_dir.iterdir()) == sorted(f'Task1_{c}.txt'
                                                         for c in DOTA_CLASSES)
    line = (dota_dir / 'Task1_baseball-diamond.txt').read_text()
    assert line == ('P0001__800__0___0 0.5000 '
                    '12.00 21.00 12.00 19.00 8.00 19.00 8.00 21.00\n')
    helicopter = (dota_dir / 'Task1_helicopter.txt').read_text().split()
    assert helicopter[:2] == ['P0001__800__0___0', '0.2500']
    corners = np.array(helicopter[2:], float).reshape(4, 2)
    np.testing.assert_allclose(corners.mean(0), [50, 50], atol=0.01)
    np.testing.assert_allclose(  # the sides are 10 px long
        np.linalg.norm(corners - np.roll(corners, 1, 0), axis=1),
        10,
        atol=0.02)
    assert (dota_dir / 'Task1_plane.txt').read_text() == ''
    drone_lines = (tmp_path / 'sub' / 'dronevehicle' /
                   'Task1_car.txt').read_text().splitlines()
    assert len(drone_lines) == 2 and drone_lines[0].startswith('00001 0.5')
    assert not (tmp_path / 'sub' / 'sar').exists()  # HBB is not DOTA


def test_bad_configs_and_samples_are_reported():
    with pytest.raises(ValueError, match='box_type'):
        SOIDetMetric(tasks=dict(sar=dict(box_type='xyxy', classes=['a'])))
    with pytest.raises(ValueError, match='outfile_prefix'):
        SOIDetMetric(tasks=TASKS, format_only=True)
    metric = SOIDetMetric(tasks=TASKS)
    image = dict(
        dets=np.zeros((1, 4), np.float32),
        scores=np.ones(1, np.float32),
        labels=np.zeros(1, np.int64))
    with pytest.raises(KeyError, match="'optical'"):
        metric.process({}, [data_sample('optical', 0, image)])
    with pytest.raises(ValueError, match=r'\(N, 5\)'):
        metric.process({}, [data_sample('dota', 0, image)])
    with pytest.raises(ValueError, match='class index 7'):
        metric.process(
            {}, [data_sample('sar', 0, dict(image, labels=np.array([7])))])


def test_summary_markdown_looks_like_table_1(repo_root):
    tasks = Config.fromfile(
        osp.join(repo_root,
                 'configs/_base_/datasets/soi_det.py')).evaluation_tasks
    metrics = {
        'soi_det/overall/mAP': 0.5020,
        'soi_det/overall/AP50': 0.8068,
        'soi_det/overall/AP75': 0.5379,
        'soi_det/sar/mAP': 0.6064,
        'soi_det/sar/AP50': 0.8994,
        'soi_det/sar/AP75': 0.6506,
        'soi_det/dota/mAP': 0.4647,
        'soi_det/dota/AP50': 0.7788,
        'soi_det/dota/AP75': 0.4824,
        'soi_det/dronevehicle/mAP': 0.4887,
        'other/metric': 1.0
    }
    assert format_summary_markdown(metrics, display_names(tasks)) == (
        '|  | overall | SAR | DOTA | DroneVehicle |\n'
        '|---|---|---|---|---|\n'
        '| mAP | 50.20 | 60.64 | 46.47 | 48.87 |\n'
        '| AP50 | 80.68 | 89.94 | 77.88 | - |\n'
        '| AP75 | 53.79 | 65.06 | 48.24 | - |\n')
