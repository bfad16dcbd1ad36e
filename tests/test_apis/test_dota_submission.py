"""DOTA test-server submission: patch predictions merged to full images.

Two hand-made overlapping patches of one image (``P0001__100__0___0`` and
``P0001__100__50___0``) both see a plane; the second also sees a ship. The
submission must hold the plane once, at its full-image place, and the ship
shifted by the second patch's offset; scored against the full-image ground
truth, every class present is found (AP 1).
"""
import re
import zipfile

import numpy as np
import pytest
import torch
from mmrotate.structures.bbox import rbox2qbox

from sm3det.evaluation import SOIDetMetric
from sm3det.evaluation.dota_submission import parse_patch_name, read_dota_task1
from sm3det.evaluation.rotated_ap import rotated_iou

CLASSES = ('plane', 'baseball-diamond', 'bridge', 'ground-track-field',
           'small-vehicle', 'large-vehicle', 'ship', 'tennis-court',
           'basketball-court', 'storage-tank', 'soccer-ball-field',
           'roundabout', 'harbor', 'swimming-pool', 'helicopter')
PLANE = [75.0, 40.0, 30.0, 12.0, 0.3]  # full-image cx, cy, w, h, angle
SHIP = [130.0, 60.0, 20.0, 8.0, -0.5]
TASK1_LINE = re.compile(r'^P0001 \d+(\.\d+)? (-?\d+\.\d{2} ){7}-?\d+\.\d{2}$')


def patch_sample(name, boxes, scores, labels):
    return dict(
        dataset_name='dota',
        img_id=name,
        pred_instances=dict(
            bboxes=torch.tensor(boxes),
            scores=torch.tensor(scores),
            labels=torch.tensor(labels)))


def shifted(box, dx):
    return [box[0] - dx] + box[1:]


def metric(tmp_path, **kwargs):
    return SOIDetMetric(
        tasks=dict(dota=dict(box_type='rbox', classes=CLASSES)),
        outfile_prefix=str(tmp_path / 'out'),
        format_only=True,
        merge_patches=['dota'],
        **kwargs)


def test_parse_patch_name():
    assert parse_patch_name('P0003__800__0___400') == ('P0003', 0, 400)
    assert parse_patch_name('P0003__0.5__24___8') == ('P0003', 24, 8)
    with pytest.raises(ValueError, match=r"'P0003' is not a DOTA patch name"):
        parse_patch_name('P0003')


def test_overlapping_patches_merge_to_one_submission(tmp_path):
    gt_dir = tmp_path / 'full_gt'
    gt_dir.mkdir()
    corners = rbox2qbox(torch.tensor([PLANE, SHIP])).numpy()
    (gt_dir / 'P0001.txt').write_text('imagesource:test\ngsd:0.5\n' + ''.join(
        ' '.join(f'{v:.2f}' for v in c) + f' {name} 0\n'
        for c, name in zip(corners, ('plane', 'ship'))))
    evaluator = metric(tmp_path, full_image_ann_dirs=dict(dota=str(gt_dir)))
    evaluator.process(None, [
        patch_sample('P0001__100__0___0', [PLANE], [0.9], [0]),
        patch_sample(
            'P0001__100__50___0',
            [shifted(PLANE, 50), shifted(SHIP, 50)], [0.8, 0.7], [0, 6])
    ])
    metrics = evaluator.compute_metrics(evaluator.results)

    out_dir = tmp_path / 'out' / 'dota_submission'
    merged = read_dota_task1(str(out_dir), CLASSES)['P0001']
    np.testing.assert_array_equal(merged['labels'], [0, 6])
    np.testing.assert_allclose(merged['scores'], [0.9, 0.7])
    # the same boxes (the Task1 corners may turn back into w/h-swapped le90)
    iou = rotated_iou(merged['bboxes'], np.array([PLANE, SHIP], np.float32))
    np.testing.assert_allclose(np.diag(iou), 1, atol=1e-3)
    with zipfile.ZipFile(out_dir / 'dota_submission.zip') as z:
        assert sorted(z.namelist()) == sorted(f'Task1_{name}.txt'
                                              for name in CLASSES)
        lines = [
            line for name in z.namelist()
            for line in z.read(name).decode().splitlines()
        ]
    assert len(lines) == 2
    assert all(TASK1_LINE.match(line) for line in lines), lines
    assert metrics['dota_full_image/AP50'] == pytest.approx(1.0)


def test_submission_errors(tmp_path):
    evaluator = metric(tmp_path)
    evaluator.process(None, [patch_sample('P0001', [PLANE], [0.9], [0])])
    with pytest.raises(ValueError, match="'P0001' is not a DOTA patch name"):
        evaluator.compute_metrics(evaluator.results)
    (tmp_path / 'out' / 'dota_submission').mkdir()
    with pytest.raises(ValueError, match='dota_submission exists; remove it'):
        metric(tmp_path)
    with pytest.raises(ValueError, match=r"'sar' is not one of the rbox"):
        SOIDetMetric(
            tasks=dict(sar=dict(box_type='hbox', classes=['a'])),
            outfile_prefix=str(tmp_path),
            merge_patches=['sar'])
