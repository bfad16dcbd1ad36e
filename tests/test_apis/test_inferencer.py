"""SM3DetInferencer on SOI-Det-mini with a briefly trained SM3Det-mini.

* Every part's test images give boxes of that part's type (HBB for SAR,
  le90 OBB for DOTA and DroneVehicle) and class names, in the pixels of the
  image given: a 2x upscaled image, which the pipeline resizes back, gives
  the same boxes 2x larger.
* Sliding-window mode: 3 x 3 mosaics of DOTA-mini test images (their
  ground truth shifted into the mosaic), cut into 256 px patches every
  192 px, so that patch borders cut objects. The mosaics' AP50 is within a
  few points of the same images' AP50 one by one; a wrong shift puts the
  boxes elsewhere (AP about 0) and a missing merge leaves objects seen by
  two patches twice, which the overlap check counts.
"""
import os.path as osp

import cv2
import numpy as np
import pytest
from mmdet.structures.bbox import HorizontalBoxes
from mmrotate.structures.bbox import RotatedBoxes

from sm3det.apis import SM3DetInferencer
from sm3det.datasets.preparation import generate_soi_det_mini
from sm3det.evaluation import pool_class_aps
from sm3det.evaluation.dota_submission import read_dota_ground_truth
from sm3det.evaluation.rotated_ap import (match_rotated_detections,
                                          rotated_class_ap, rotated_iou)
from repository import run_script

TEST_IMAGES = dict(
    sar='sar/JPEGImages/test/{:06d}.jpg',
    dota='dota/val/images/P{:04d}.png',
    dronevehicle='dronevehicle/test/images/{:05d}.jpg')
BOX_TYPES = dict(
    sar=HorizontalBoxes, dota=RotatedBoxes, dronevehicle=RotatedBoxes)
TOP_K = 10  # highest-scoring detections per image compared across scales
MOSAIC_GRID = 3
NUM_MOSAICS = 2
PATCH, OVERLAP = 256, 64  # windows start at 0, 192, 384, 512 of 768 px


@pytest.fixture(scope='module')
def inferencer(trained_mini):
    return SM3DetInferencer(
        trained_mini.cfg, trained_mini.checkpoint, device='cpu')


def as_rboxes(boxes) -> np.ndarray:
    """HorizontalBoxes / RotatedBoxes -> (N, 5) rotated boxes."""
    boxes = boxes.tensor.numpy()
    if boxes.shape[1] == 5:
        return boxes
    return np.concatenate(
        [(boxes[:, :2] + boxes[:, 2:]) / 2, boxes[:, 2:] - boxes[:, :2],
         np.zeros((len(boxes), 1), boxes.dtype)],
        axis=1)


@pytest.mark.parametrize('task', list(TEST_IMAGES))
def test_boxes_of_the_task_in_the_image_frame(inferencer, trained_mini,
                                              tmp_path, task):
    images = [
        osp.join(trained_mini.data_root, TEST_IMAGES[task].format(i))
        for i in range(2)
    ]
    upscaled = []
    for path in images:
        img = cv2.imread(path)
        # nearest: the pipeline's 2x bilinear downscale restores the image
        upscaled.append(
            cv2.resize(img, None, fx=2, fy=2, interpolation=cv2.INTER_NEAREST))
    out = inferencer(images + upscaled, task=task, return_datasample=True)
    preds = out['predictions']
    classes = inferencer.specs[task].classes
    for pred in preds:
        assert isinstance(pred.pred_instances.bboxes, BOX_TYPES[task])
        assert pred.classes == classes
    assert [p.ori_shape for p in preds[2:]
            ] == [tuple(2 * s for s in p.ori_shape) for p in preds[:2]]

    matched = total = 0
    for small, large in zip(preds[:2], preds[2:]):  # same images, 1x / 2x
        keep = small.pred_instances.scores.argsort(descending=True)[:TOP_K]
        expected = as_rboxes(small.pred_instances.bboxes[keep])
        expected[:, :4] *= 2
        labels = small.pred_instances.labels[keep].numpy()
        found = as_rboxes(large.pred_instances.bboxes)
        iou = rotated_iou(expected, found)
        same = labels[:, None] == large.pred_instances.labels.numpy()
        matched += int(((iou > 0.7) & same).any(axis=1).sum())
        total += len(expected)
    assert total > 0, f'no {task} detection to compare'
    print(f'\n{task}: {matched} of {total} top detections found 2x larger')
    assert matched >= 0.8 * total, (task, matched, total)

    dumped = inferencer(
        images[0], task=task, out_dir=str(tmp_path),
        no_save_pred=False)['predictions'][0]
    assert set(dumped['label_names']) <= set(classes)
    assert osp.isfile(tmp_path / 'preds' /
                      (osp.splitext(osp.basename(images[0]))[0] + '.json'))
    assert osp.isfile(tmp_path / 'vis' / osp.basename(images[0]))


@pytest.fixture(scope='module')
def dota_mosaics(tmp_path_factory):
    """DOTA-mini test images (a fresh draw) and their 3 x 3 mosaics."""
    root = str(tmp_path_factory.mktemp('mosaic'))
    generate_soi_det_mini(
        root,
        num_train=0,
        num_test=NUM_MOSAICS * MOSAIC_GRID**2,
        seed=2,
        parts=('dota', ))
    val = osp.join(root, 'dota', 'val')
    out = run_script('tools/demo/dota_mosaic.py', '--img-dir',
                     osp.join(val, 'images'), '--ann-dir',
                     osp.join(val, 'annfiles'), '--out-dir',
                     osp.join(root, 'mosaic'), '--grid', MOSAIC_GRID).stdout
    assert out.startswith(f'{NUM_MOSAICS} mosaics of {MOSAIC_GRID} x '
                          f'{MOSAIC_GRID} images')
    return val, osp.join(root, 'mosaic')


def ap50(preds, truth, num_classes):
    """Mean AP at IoU 0.5 over the classes with ground truth."""
    none, no_labels = np.zeros((0, 5), np.float32), np.zeros(0, np.int64)
    outcomes, scores, labels = [], [], []
    for name, gt in truth.items():
        pred = preds[name].pred_instances
        outcomes.append(
            match_rotated_detections(pred.bboxes.tensor.numpy(),
                                     pred.scores.numpy(), pred.labels.numpy(),
                                     gt['bboxes'], gt['labels'], none,
                                     no_labels, (0.5, )))
        scores.append(pred.scores.numpy())
        labels.append(pred.labels.numpy())
    ap, _, _ = rotated_class_ap(
        np.concatenate(outcomes, axis=1), np.concatenate(scores),
        np.concatenate(labels),
        np.concatenate([gt['labels'] for gt in truth.values()]), num_classes)
    return float(pool_class_aps([ap])[0])


def test_mosaic_sliding_window_matches_separate_images(inferencer,
                                                       dota_mosaics):
    val, mosaic_dir = dota_mosaics
    classes = inferencer.specs['dota'].classes
    truth = read_dota_ground_truth(osp.join(val, 'annfiles'), classes)
    separate = {
        p.img_id: p
        for p in inferencer(
            osp.join(val, 'images'),
            task='dota',
            batch_size=4,
            return_datasample=True)['predictions']
    }
    mosaic_truth = read_dota_ground_truth(
        osp.join(mosaic_dir, 'annfiles'), classes)
    mosaics = {
        p.img_id: p
        for p in inferencer(
            osp.join(mosaic_dir, 'images'),
            task='dota',
            sliding_window=True,
            patch_size=PATCH,
            patch_overlap=OVERLAP,
            batch_size=4,
            return_datasample=True)['predictions']
    }
    assert all(p.num_patches == 16 and p.ori_shape == (768, 768)
               for p in mosaics.values())

    separate_ap = ap50(separate, truth, len(classes))
    mosaic_ap = ap50(mosaics, mosaic_truth, len(classes))
    print(f'\nDOTA-mini AP50: separate images {100 * separate_ap:.2f}, '
          f'3x3 mosaics (sliding window) {100 * mosaic_ap:.2f}')
    assert separate_ap > 0.05, 'the trained model finds too little to compare'
    assert abs(mosaic_ap - separate_ap) < 0.07  # measured 1.0-3.5 points

    # Objects inside the overlap of two windows: each found once at most,
    # and some found (the check is not empty).
    starts = np.array([0, 192, 384, 512])
    found_once = 0
    for name, gt in mosaic_truth.items():
        pred = mosaics[name].pred_instances
        boxes = pred.bboxes.tensor.numpy()
        for box, label in zip(gt['bboxes'], gt['labels']):
            half = np.hypot(box[2], box[3]) / 2
            inside = ((starts <= box[0] - half)
                      & (box[0] + half <= starts + PATCH)).sum()
            inside_y = ((starts <= box[1] - half)
                        & (box[1] + half <= starts + PATCH)).sum()
            if inside * inside_y < 2:
                continue
            hits = ((rotated_iou(box[None], boxes)[0] > 0.5)
                    & (pred.labels.numpy() == label)
                    & (pred.scores.numpy() > 0.05)).sum()
            assert hits <= 1, f'{name}: an object seen by 2 patches twice'
            found_once += int(hits == 1)
    assert found_once > 0
