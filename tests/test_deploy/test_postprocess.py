"""``sm3det.deploy.postprocess`` (numpy) against the PyTorch route on the
same float32 inputs: mmcv's ``box_iou_rotated``, ``nms``, ``nms_rotated``
and ``batched_nms`` (served by ``sm3det_compat``'s kernels), mmdet's
``scale_boxes``, mmrotate's ``RotatedBoxes.rescale_``, ``translate_bboxes``
and ``merge_results_by_nms``."""
import numpy as np
import pytest
import torch
from mmcv.ops import batched_nms as torch_batched_nms
from mmcv.ops import box_iou_rotated as torch_box_iou_rotated
from mmcv.ops import nms as torch_nms
from mmcv.ops import nms_rotated as torch_nms_rotated
from mmdet.structures import DetDataSample
from mmdet.structures.bbox import scale_boxes
from mmengine.structures import InstanceData
from mmrotate.structures.bbox import RotatedBoxes
from mmrotate.utils import merge_results_by_nms
from mmrotate.utils.patch.merge_results import translate_bboxes

from sm3det.deploy.postprocess import (batched_nms, box_iou_rotated,
                                       merge_patches, nms, nms_rotated,
                                       rescale_boxes, shift_boxes)

HALF_PI = np.pi / 2


def scene(rng, num, size=600, num_classes=4, ties=0):
    """Detections as a head gives them: boxes in clusters around objects
    (many overlaps), rotated (num, 5) le90 and horizontal (num, 4), float32
    scores with ``ties`` scores copied between boxes too far apart to
    overlap (so that any order among them takes the same decisions), and
    int64 labels."""
    objects = rng.uniform(0, size, (num // 6 + 1, 2))
    centres = objects[rng.integers(0, len(objects), num)]
    centres = centres + rng.normal(0, 5, (num, 2))
    sizes = rng.uniform(6, 60, (num, 2))
    angles = rng.uniform(-HALF_PI, HALF_PI, (num, 1))
    rboxes = np.concatenate([centres, sizes, angles], 1).astype(np.float32)
    hboxes = np.concatenate([centres - sizes / 2, centres + sizes / 2],
                            1).astype(np.float32)
    scores = rng.permutation(num).astype(np.float32) / num
    # far apart: centres over two box diagonals (85 px) apart; among the
    # best scores, so that both boxes of a tie are likely kept
    best = np.argsort(-scores)[:ties * 20]
    far = np.linalg.norm(centres[best, None] - centres[None], axis=-1) > 180
    tied = set()
    for a, j in np.argwhere(far):
        i = best[a]
        if len(tied) < 2 * ties and not tied & {i, j}:
            scores[j] = scores[i]
            tied |= {i, j}
    assert len(tied) == 2 * ties
    labels = rng.integers(0, num_classes, num)
    return rboxes, hboxes, scores, labels


def canonical(keep, scores):
    """``keep`` reordered by decreasing score, equal scores by increasing
    index: torch's sort leaves the order of equal scores arbitrary."""
    return keep[np.lexsort((keep, -scores[keep]))]


def as_tensors(*arrays):
    return [torch.from_numpy(np.ascontiguousarray(a)) for a in arrays]


# ---------------------------------------------------------- rotated IoU
def test_box_iou_rotated_matches_kernel_bitwise_on_random_boxes():
    rng = np.random.default_rng(0)
    rboxes, *_ = scene(rng, 160, size=200)
    boxes1, boxes2 = rboxes[:70], rboxes[70:]
    expected = torch_box_iou_rotated(*as_tensors(boxes1, boxes2)).numpy()
    ious = box_iou_rotated(boxes1, boxes2)
    assert ious.dtype == np.float32 and ious.shape == (70, 90)
    assert (ious > 0).mean() > 0.05  # many overlaps
    np.testing.assert_array_equal(ious, expected)
    aligned = torch_box_iou_rotated(
        *as_tensors(boxes1, boxes2[:70]), aligned=True).numpy()
    np.testing.assert_array_equal(
        box_iou_rotated(boxes1, boxes2[:70], aligned=True), aligned)


def test_box_iou_rotated_tricky_boxes():
    diagonal = np.float32(2 * np.sqrt(2))
    boxes = np.array(
        [
            [10, 10, 4, 2, 0],
            [10, 10, 4, 2, 0],  # identical
            [14, 10, 4, 2, 0],  # touching along a side
            [10, 12, 4, 2, 0],  # touching along the other side
            [10, 10, 2, 1, 0],  # nested
            [10, 10, 4, 2, HALF_PI],  # 90 degrees
            [10, 10, 4, 2, np.pi / 4],  # 45 degrees
            [12, 10, 4, 2, np.pi],  # 180 degrees, shifted
            [10, 10, 4, 4, np.pi / 4],
            [10 + diagonal, 10, 4, 4, np.pi / 4],  # corners touching
            [10, 10, 0, 2, 0],  # zero width
            [10, 10, 0, 0, 0.3],  # a point
            [10, 10, 1e-3, 5, 0.1],  # thin
            [10, 10, 4, 2, HALF_PI - 1e-7],
            [1000, 1000, 3, 3, 0],  # far away
        ],
        np.float32)
    ious = box_iou_rotated(boxes, boxes)
    expected = torch_box_iou_rotated(*as_tensors(boxes, boxes)).numpy()
    np.testing.assert_array_equal(ious, expected)
    assert ious[0, 1] == pytest.approx(1, abs=1e-6)
    assert ious[0, 2] == pytest.approx(0, abs=1e-6)
    assert ious[0, 4] == pytest.approx(0.25, abs=1e-6)
    assert ious[0, 5] == pytest.approx(4 / 12, abs=1e-6)
    assert (ious[10:12] == 0).all() and (ious[:, 10:12] == 0).all()
    assert ious[0, 14] == pytest.approx(0, abs=1e-6)


# ------------------------------------------------------------------ NMS
@pytest.mark.parametrize('threshold', [0.1, 0.5, 0.8])
def test_nms_and_nms_rotated_keep_the_same_boxes(threshold):
    rng = np.random.default_rng(1)
    rboxes, hboxes, scores, _ = scene(rng, 600, size=300, ties=10)
    _, expected = torch_nms(*as_tensors(hboxes, scores), threshold)
    keep = nms(hboxes, scores, threshold)
    assert keep.dtype == np.int64
    assert len(np.unique(scores[keep])) < len(keep)  # ties kept
    assert 0 < len(keep) < len(scores)
    np.testing.assert_array_equal(keep, canonical(expected.numpy(), scores))
    _, expected = torch_nms_rotated(*as_tensors(rboxes, scores), threshold)
    keep = nms_rotated(rboxes, scores, threshold)
    assert keep.dtype == np.int64
    assert 0 < len(keep) < len(scores)
    np.testing.assert_array_equal(keep, canonical(expected.numpy(), scores))


@pytest.mark.parametrize('threshold', [0.0, 1e-5])
def test_nms_rotated_at_tiny_thresholds(threshold):
    """Every pair is computed: rotated IoU >= 0 suppresses any box."""
    rng = np.random.default_rng(2)
    rboxes, _, scores, _ = scene(rng, 300)
    _, expected = torch_nms_rotated(*as_tensors(rboxes, scores), threshold)
    keep = nms_rotated(rboxes, scores, threshold)
    np.testing.assert_array_equal(keep, expected.numpy())
    if threshold == 0:
        assert len(keep) == 1
    else:
        assert len(keep) > 1


def test_nms_threshold_is_strict_for_hbox_inclusive_for_rbox():
    """IoU exactly 0.5: ``nms`` keeps both (>), ``nms_rotated`` not (>=);
    equal scores are visited by increasing index."""
    hboxes = np.array([[0, 0, 4, 2], [0, 0, 2, 2], [8, 8, 9, 9]], np.float32)
    rboxes = np.array([[2, 1, 4, 2, 0], [1, 1, 2, 2, 0], [8, 8, 1, 1, 0]],
                      np.float32)
    scores = np.array([0.5, 0.5, 0.5], np.float32)
    np.testing.assert_array_equal(nms(hboxes, scores, 0.5), [0, 1, 2])
    np.testing.assert_array_equal(nms_rotated(rboxes, scores, 0.5), [0, 2])
    np.testing.assert_array_equal(
        nms_rotated(rboxes, scores[::-1] * [1, 2, 3], 0.5), [2, 1])


@pytest.mark.parametrize('rotated', [False, True])
@pytest.mark.parametrize('split_thr', [10000, 50])
@pytest.mark.parametrize('class_agnostic', [False, True])
def test_batched_nms_matches_mmcv(rotated, split_thr, class_agnostic):
    rng = np.random.default_rng(3)
    rboxes, hboxes, scores, labels = scene(rng, 400, ties=6)
    boxes = rboxes if rotated else hboxes
    nms_cfg = dict(
        type='nms_rotated' if rotated else 'nms',
        iou_threshold=0.3,
        split_thr=split_thr)
    dets, expected = torch_batched_nms(
        *as_tensors(boxes, scores, labels),
        nms_cfg,
        class_agnostic=class_agnostic)
    keep = batched_nms(boxes, scores, labels, 0.3, rotated, class_agnostic,
                       split_thr)
    expected = expected.numpy()
    assert 0 < len(keep) < len(scores)
    assert len(np.unique(scores[keep])) < len(keep)  # ties kept
    # the scores mmcv returns are those of the kept boxes
    np.testing.assert_array_equal(dets[:, -1].numpy(), scores[expected])
    np.testing.assert_array_equal(keep, canonical(expected, scores))


@pytest.mark.parametrize('rotated', [False, True])
@pytest.mark.parametrize('split_thr', [10000, 50])
def test_batched_nms_rounds_class_offsets_as_mmcv(rotated, split_thr):
    """A far box makes the class offsets huge: the shifted float32 boxes
    lose their fractions, and both branches suppress on them."""
    rng = np.random.default_rng(8)
    rboxes, hboxes, scores, _ = scene(rng, 300, size=40)
    labels = rng.integers(1, 4, 300)
    boxes = rboxes if rotated else hboxes
    boxes[0, :2] = boxes[0, 2:4] = 2e6
    labels[0] = 0
    nms_cfg = dict(
        type='nms_rotated' if rotated else 'nms',
        iou_threshold=0.3,
        split_thr=split_thr)
    _, expected = torch_batched_nms(*as_tensors(boxes, scores, labels),
                                    nms_cfg)
    np.testing.assert_array_equal(
        batched_nms(boxes, scores, labels, 0.3, rotated, False, split_thr),
        expected.numpy())


def test_batched_nms_separates_classes_and_handles_empty_input():
    boxes = np.array([[0, 0, 10, 10], [0, 0, 10, 10], [1, 0, 10, 10]],
                     np.float32)
    scores = np.array([0.9, 0.8, 0.7], np.float32)
    labels = np.array([0, 1, 0])
    np.testing.assert_array_equal(
        batched_nms(boxes, scores, labels, 0.5, rotated=False), [0, 1])
    np.testing.assert_array_equal(
        batched_nms(boxes, scores, labels, 0.5, False, class_agnostic=True),
        [0])
    for box_dim, rotated in ((4, False), (5, True)):
        keep = batched_nms(
            np.zeros((0, box_dim), np.float32), np.zeros(0, np.float32),
            np.zeros(0, np.int64), 0.5, rotated)
        assert keep.dtype == np.int64 and keep.shape == (0, )


def test_nms_rotated_on_a_dense_scene_of_2000_boxes():
    rng = np.random.default_rng(4)
    rboxes, _, scores, labels = scene(rng, 2000, size=1000, num_classes=8)
    _, expected = torch_batched_nms(
        *as_tensors(rboxes, scores, labels),
        dict(type='nms_rotated', iou_threshold=0.1))
    keep = batched_nms(rboxes, scores, labels, 0.1, rotated=True)
    np.testing.assert_array_equal(keep, expected.numpy())


# ----------------------------------------------------- rescale and merge
@pytest.mark.parametrize('scale_factor', [(1024 / 800, 1024 / 800),
                                          (0.7301, 0.6553), (2.5, 1 / 3)])
def test_rescale_boxes_as_mmdet_and_mmrotate(scale_factor):
    rng = np.random.default_rng(5)
    rboxes, hboxes, *_ = scene(rng, 5000, size=1024)
    inverse = [1 / s for s in scale_factor]
    expected = scale_boxes(torch.from_numpy(hboxes), inverse).numpy()
    np.testing.assert_array_equal(
        rescale_boxes(hboxes, scale_factor), expected)
    rotated = RotatedBoxes(torch.from_numpy(rboxes.copy()))
    rotated.rescale_(inverse)
    expected = rotated.tensor.numpy()
    result = rescale_boxes(rboxes, scale_factor)
    assert result.dtype == np.float32
    np.testing.assert_array_equal(result[:, :2], expected[:, :2])
    # torch's float32 cos, sin, atan2 and sqrt are up to 1 ulp off the
    # correctly rounded ones that numpy gives: a few ulp in the end
    np.testing.assert_array_max_ulp(result[:, 2:4], expected[:, 2:4], 8)
    np.testing.assert_allclose(result[:, 4], expected[:, 4], atol=1e-6)


@pytest.mark.parametrize('box_dim', [4, 5])
def test_shift_boxes_as_translate_bboxes(box_dim):
    rng = np.random.default_rng(6)
    rboxes, hboxes, *_ = scene(rng, 50)
    boxes = rboxes if box_dim == 5 else hboxes
    offset = np.array([824, 1648])
    expected = translate_bboxes(torch.from_numpy(boxes.copy()), offset)
    np.testing.assert_array_equal(shift_boxes(boxes, offset), expected.numpy())
    with pytest.raises(ValueError):
        shift_boxes(np.zeros((2, 8), np.float32), offset)
    with pytest.raises(ValueError):
        rescale_boxes(np.zeros((2, 8), np.float32), (2, 2))


@pytest.mark.parametrize('rotated', [False, True])
def test_merge_patches_as_merge_results_by_nms(rotated):
    rng = np.random.default_rng(7)
    offsets = np.array([[0, 0], [400, 0], [0, 400], [400, 400]])
    # distinct scores: equal ones in overlapping patches may overlap
    all_scores = np.split(rng.permutation(600).astype(np.float32) / 600, 4)
    patches, samples = [], []
    for scores in all_scores:
        rboxes, hboxes, _, labels = scene(rng, 150, size=600)
        boxes = rboxes if rotated else hboxes
        patches.append((boxes, scores, labels))
        samples.append(
            DetDataSample(
                pred_instances=InstanceData(
                    bboxes=torch.from_numpy(boxes.copy()),
                    scores=torch.from_numpy(scores),
                    labels=torch.from_numpy(labels))))
    nms_cfg = dict(type='nms_rotated' if rotated else 'nms', iou_threshold=0.2)
    expected = merge_results_by_nms(samples, offsets, (1000, 1000),
                                    nms_cfg).pred_instances
    boxes, scores, labels = merge_patches(*zip(*patches), offsets, 0.2)
    order = canonical(np.arange(len(expected)), expected.scores.numpy())
    assert len(boxes) < 600
    np.testing.assert_array_equal(boxes, expected.bboxes.numpy()[order])
    np.testing.assert_array_equal(scores, expected.scores.numpy()[order])
    np.testing.assert_array_equal(labels, expected.labels.numpy()[order])
    assert boxes.dtype == scores.dtype == np.float32
    assert labels.dtype == np.int64
