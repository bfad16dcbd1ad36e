"""Rotated VOC-area AP: hand-computed cases and equality with mmrotate."""
import math

import numpy as np
import pytest
import torch

# isort: off
import sm3det  # noqa: F401  (compat fixes before mmrotate)
from mmcv.ops import box_iou_rotated
# isort: on
from sm3det.evaluation.rotated_ap import (FALSE_POSITIVE, IGNORED,
                                          TRUE_POSITIVE,
                                          match_rotated_detections,
                                          rotated_class_ap, rotated_iou)

IOU_THRS = np.linspace(0.5, 0.95, 10).tolist()
ANGLE = math.pi / 6  # all boxes share it, so IoUs equal the axis-aligned ones
EMPTY_BOXES = np.zeros((0, 5), np.float32)
EMPTY_LABELS = np.zeros(0, np.int64)


def square(cx, cy, shift_along_width=0.0, side=10.0):
    """A rotated side x side box, moved along its own width axis."""
    return [
        cx + shift_along_width * math.cos(ANGLE),
        cy + shift_along_width * math.sin(ANGLE), side, side, ANGLE
    ]


def evaluate(dets,
             scores,
             det_labels,
             gts,
             gt_labels,
             ignored=EMPTY_BOXES,
             ignored_labels=EMPTY_LABELS,
             num_classes=1):
    det_labels = np.asarray(det_labels, np.int64)
    scores = np.asarray(scores, np.float32)
    gt_labels = np.asarray(gt_labels, np.int64)
    outcomes = match_rotated_detections(
        np.asarray(dets, np.float32), scores, det_labels,
        np.asarray(gts, np.float32), gt_labels,
        np.asarray(ignored, np.float32).reshape(-1, 5),
        np.asarray(ignored_labels, np.int64), IOU_THRS)
    ap, num_gts, num_dets = rotated_class_ap(outcomes, scores, det_labels,
                                             gt_labels, num_classes)
    return outcomes, ap, num_gts, num_dets


def test_rotated_iou_equals_mmcv_box_iou_rotated_exactly(random_rotated_set):
    # The bounding-circle shortcut must not change a single value.
    images = random_rotated_set(np.random.default_rng(3), 4, 1)
    dets = np.concatenate([im['dets'] for im in images])
    gts = np.concatenate([im['gts'] for im in images])
    expected = box_iou_rotated(torch.from_numpy(dets),
                               torch.from_numpy(gts)).numpy()
    assert (expected > 0).any() and (expected == 0).any()
    np.testing.assert_array_equal(rotated_iou(dets, gts), expected)
    assert rotated_iou(dets[:0], gts).shape == (0, len(gts))


def test_two_gts_three_detections_hand_computed_ap():
    # GT A and B; d1 = A (IoU 1), d2 hits nothing, d3 = B moved by 2 px:
    # IoU 80 / 120 = 2/3, a match up to the 0.65 threshold only.
    gts = [square(50, 50), square(100, 100)]
    dets = [square(50, 50), square(200, 200), square(100, 100, 2.0)]
    outcomes, ap, num_gts, num_dets = evaluate(dets, [0.9, 0.8, 0.7],
                                               [0, 0, 0], gts, [0, 0])
    tp, fp = TRUE_POSITIVE, FALSE_POSITIVE
    assert outcomes[:4].tolist() == [[tp, fp, tp]] * 4  # 0.50 .. 0.65
    assert outcomes[4:].tolist() == [[tp, fp, fp]] * 6  # 0.70 .. 0.95
    # PR points (R, P): (.5, 1), (.5, .5), (1, 2/3) -> area .5*1 + .5*2/3;
    # without d3: (.5, 1), (.5, .5) -> .5.
    expected = [5 / 6] * 4 + [0.5] * 6
    np.testing.assert_allclose(ap[:, 0], expected, atol=1e-6)
    np.testing.assert_allclose(ap.mean(), 0.6333333, atol=1e-6)
    assert num_gts.tolist() == [2] and num_dets.tolist() == [3]


def test_duplicates_and_taken_boxes_are_false_positives():
    # d2 overlaps A best (IoU 2/3) and B a little: A is taken by d1, and the
    # VOC/mmrotate rule does not fall back to B -> FP, and B is missed.
    gts = [square(50, 50), square(58, 50)]
    dets = [square(50, 50), square(50, 50, 2.0)]
    outcomes, ap, _, _ = evaluate(dets, [0.9, 0.8], [0, 0], gts, [0, 0])
    assert outcomes[0].tolist() == [TRUE_POSITIVE, FALSE_POSITIVE]
    np.testing.assert_allclose(ap[0, 0], 0.5, atol=1e-6)


def test_detections_on_ignored_objects_count_neither_way():
    gts = [square(50, 50)]
    ignored = [square(120, 120)]
    dets = [square(120, 120), square(50, 50)]  # the ignored one scores best
    outcomes, ap, num_gts, _ = evaluate(dets, [0.9, 0.8], [0, 0], gts, [0],
                                        ignored, [0])
    assert (outcomes[:, 0] == IGNORED).all()
    assert (outcomes[:, 1] == TRUE_POSITIVE).all()
    assert num_gts.tolist() == [1]  # ignored objects are not counted
    np.testing.assert_allclose(ap[:, 0], 1.0, atol=1e-6)


def test_classes_without_ground_truth_are_nan_and_missed_classes_zero():
    # Class 1 has detections but no GT (skipped); class 2 has GT but no
    # detection (AP 0).
    gts = [square(50, 50), square(150, 150)]
    dets = [square(50, 50), square(100, 100)]
    _, ap, num_gts, num_dets = evaluate(
        dets, [0.9, 0.8], [0, 1], gts, [0, 2], num_classes=3)
    assert np.allclose(ap[:, 0], 1.0)
    assert np.isnan(ap[:, 1]).all()
    assert (ap[:, 2] == 0).all()
    assert num_gts.tolist() == [1, 0, 1] and num_dets.tolist() == [1, 1, 0]


@pytest.mark.filterwarnings('ignore')
def test_equals_mmrotate_eval_rbbox_map_at_iou_half(random_rotated_set):
    from mmrotate.evaluation import eval_rbbox_map

    num_classes = 3
    images = random_rotated_set(np.random.default_rng(0), 12, num_classes)
    outcomes = [
        match_rotated_detections(im['dets'], im['scores'], im['labels'],
                                 im['gts'], im['gt_labels'], im['ignored'],
                                 im['ignored_labels'], [0.5]) for im in images
    ]
    ap, num_gts, _ = rotated_class_ap(
        np.concatenate(outcomes, axis=1),
        np.concatenate([im['scores'] for im in images]),
        np.concatenate([im['labels'] for im in images]),
        np.concatenate([im['gt_labels'] for im in images]), num_classes)
    assert (outcomes[0] != FALSE_POSITIVE).any()  # the set is not trivial

    det_results = [[
        np.hstack([
            im['dets'][im['labels'] == c], im['scores'][im['labels'] == c,
                                                        None]
        ]) for c in range(num_classes)
    ] for im in images]
    annotations = [
        dict(
            bboxes=im['gts'],
            labels=im['gt_labels'],
            bboxes_ignore=im['ignored'],
            labels_ignore=im['ignored_labels']) for im in images
    ]
    mean_ap, per_class = eval_rbbox_map(
        det_results,
        annotations,
        iou_thr=0.5,
        use_07_metric=False,
        box_type='rbox',
        logger='silent',
        nproc=1)
    assert [r['num_gts'] for r in per_class] == num_gts.tolist()
    np.testing.assert_allclose(ap[0], [r['ap'] for r in per_class], atol=1e-6)
    np.testing.assert_allclose(np.nanmean(ap[0]), mean_ap, atol=1e-6)
    assert 0.2 < mean_ap < 0.95
