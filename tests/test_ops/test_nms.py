"""``nms`` and ``nms_rotated``'s PyTorch kernels, through mmcv's wrappers
(``nms``, ``nms_rotated``, ``batched_nms``), against plain greedy loops and,
where the wheel is cached, compiled mmcv (same indices in the same order)."""
import math

import numpy as np
import pytest
import torch
from shapely.geometry import Polygon

from sm3det_compat.ops import nms as kernel_module

HALF_PI = math.pi / 2

# one torch thread, as the C++ kernels (see conftest.one_thread)
pytestmark = pytest.mark.usefixtures('one_thread')


def greedy_nms(scores, overlaps, threshold, strict):
    """Plain greedy NMS: boxes visited in the order of
    ``scores.sort(0, descending=True)`` (the order mmcv's C++ takes, equal
    scores included); each is kept unless a kept box before it overlaps it
    more than (``strict``) or at least ``threshold``. ``overlaps(i, js)``
    gives box i's overlaps with the boxes ``js`` (a numpy array)."""
    order = scores.sort(0, descending=True)[1].numpy()
    alive = np.ones(len(order), bool)
    keep = []
    for pos, i in enumerate(order):
        if not alive[pos]:
            continue
        keep.append(int(i))
        later = pos + 1 + np.flatnonzero(alive[pos + 1:])
        values = overlaps(i, order[later])
        hit = values > threshold if strict else values >= threshold
        alive[later[hit]] = False
    return keep


def horizontal_overlaps(boxes, offset):
    """IoU rows with mmcv's formula, in float32 as its CPU kernel."""
    b = boxes.float().numpy()
    areas = (b[:, 2] - b[:, 0] + offset) * (b[:, 3] - b[:, 1] + offset)

    def overlaps(i, js):
        w = np.minimum(b[i, 2], b[js, 2]) - np.maximum(b[i, 0], b[js, 0])
        h = np.minimum(b[i, 3], b[js, 3]) - np.maximum(b[i, 1], b[js, 1])
        inter = np.maximum(w + offset, 0) * np.maximum(h + offset, 0)
        return inter / (areas[i] + areas[js] - inter)

    return overlaps


def polygon(box):
    """The shapely polygon of a rotated box (mmcv's clockwise angle)."""
    cx, cy, w, h, angle = (float(v) for v in box[:5])
    cos, sin = math.cos(angle), math.sin(angle)
    return Polygon([(cx + cos * x - sin * y, cy + sin * x + cos * y)
                    for x, y in ((-w / 2, -h / 2), (w / 2, -h / 2),
                                 (w / 2, h / 2), (-w / 2, h / 2))])


def shapely_overlaps(boxes):
    """Rotated IoU rows from shapely polygons."""
    polys = [polygon(b) for b in boxes]

    def overlaps(i, js):
        return np.array([
            polys[i].intersection(polys[j]).area /
            polys[i].union(polys[j]).area for j in js
        ])

    return overlaps


def kernel_overlaps(boxes, scores):
    """Rotated IoU rows from ``mmcv.ops.box_iou_rotated`` (checked against
    shapely in test_box_iou_rotated.py), for many boxes: computed at once for
    the pairs whose circumcircles meet (no other pair overlaps), the box
    earlier in score order first, as NMS compares them."""
    from mmcv.ops import box_iou_rotated
    order = scores.sort(0, descending=True)[1]
    rank = torch.empty_like(order)
    rank[order] = torch.arange(len(order))
    radius = boxes[:, 2:4].norm(dim=1) / 2 + 1
    near = torch.cdist(boxes[:, :2], boxes[:, :2]) <= radius[:, None] + radius
    first, second = (near & (rank[:, None] < rank)).nonzero().T
    ious = torch.zeros(len(boxes), len(boxes))
    ious[first, second] = box_iou_rotated(
        boxes[first], boxes[second], aligned=True)
    return lambda i, js: ious[i, js].numpy()


def random_boxes(num, seed, spread=100., size=30., ties=True):
    """(N, 4) boxes and (N,) scores: clusters of overlapping boxes, some
    duplicated; scores with many ties when ``ties``."""
    gen = torch.Generator().manual_seed(seed)
    corner = torch.rand(num, 2, generator=gen) * spread
    boxes = torch.cat(
        [corner, corner + torch.rand(num, 2, generator=gen) * size + 1], 1)
    boxes[1::7] = boxes[::7][:len(boxes[1::7])]  # coincident boxes
    scores = torch.rand(num, generator=gen)
    if ties:
        scores = (scores * 8).round() / 8
    return boxes, scores


def random_rotated(num, seed, spread=100., size=30., ties=True):
    """(N, 5) rotated boxes, a quarter of them at or across +-pi/2, some
    duplicated, and their scores."""
    gen = torch.Generator().manual_seed(seed)
    centres = torch.rand(num, 2, generator=gen) * spread
    sizes = torch.rand(num, 2, generator=gen) * size + 1
    angles = (torch.rand(num, generator=gen) * 2 - 1) * math.pi
    near = torch.rand(num, generator=gen) < 0.25
    step = (torch.rand(num, generator=gen) - 0.5) * 1e-3
    sign = torch.where(torch.rand(num, generator=gen) < 0.5, 1., -1.)
    angles = torch.where(near, sign * HALF_PI + step, angles)
    boxes = torch.cat([centres, sizes, angles[:, None]], 1)
    boxes[1::7] = boxes[::7][:len(boxes[1::7])]  # coincident boxes
    scores = torch.rand(num, generator=gen)
    if ties:
        scores = (scores * 8).round() / 8
    return boxes, scores


@pytest.mark.parametrize('offset', [0, 1])
@pytest.mark.parametrize('threshold', [0.3, 0.7])
@pytest.mark.parametrize('ties', [False, True])
def test_nms_matches_greedy(pytorch_kernels, offset, threshold, ties):
    from mmcv.ops import nms
    boxes, scores = random_boxes(400, 0, ties=ties)
    dets, keep = nms(boxes, scores, threshold, offset=offset)
    assert keep.dtype == torch.int64
    assert keep.tolist() == greedy_nms(
        scores, horizontal_overlaps(boxes, offset), threshold, strict=True)
    assert torch.equal(dets, torch.cat([boxes[keep], scores[keep, None]], 1))


def test_nms_edge_cases(pytorch_kernels):
    from mmcv.ops import nms
    boxes = torch.tensor([[0., 0., 2., 2.], [0., 0., 2., 1.], [2., 0., 3., 1.],
                          [5., 5., 5., 5.], [5., 5., 5., 5.]])
    scores = torch.tensor([0.9, 0.8, 0.7, 0.6, 0.5])
    # IoU exactly 0.5 is not above 0.5; offset 1 makes touching boxes
    # overlap and zero-size boxes 1 x 1
    assert nms(boxes, scores, 0.5)[1].tolist() == [0, 1, 2, 3, 4]
    assert nms(boxes, scores, 0.49)[1].tolist() == [0, 2, 3, 4]
    assert nms(boxes, scores, 0.15, offset=1)[1].tolist() == [0, 3]
    # equal scores: torch's descending sort order, as the C++ takes it
    ties = torch.full((5, ), 0.5)
    first = ties.sort(0, descending=True)[1][0].item()
    assert nms(boxes[:2], ties[:2], 0.4)[1].tolist() == [
        ties[:2].sort(0, descending=True)[1][0].item()
    ]
    assert first in nms(boxes, ties, 0.4)[1].tolist()
    # empty inputs, score filtering and max_num as mmcv's wrapper does them
    dets, keep = nms(boxes[:0], scores[:0], 0.5)
    assert dets.shape == (0, 5) and keep.shape == (0, )
    assert nms(boxes, scores, 0.49, score_threshold=0.65)[1].tolist() == [0, 2]
    assert nms(boxes, scores, 0.49, max_num=2)[1].tolist() == [0, 2]
    # numpy in, numpy out
    _, keep = nms(boxes.numpy(), scores.numpy(), 0.49)
    assert isinstance(keep, np.ndarray) and keep.tolist() == [0, 2, 3, 4]


@pytest.mark.parametrize('dtype', [torch.float16, torch.bfloat16])
def test_nms_half_precision(pytorch_kernels, dtype):
    """Half boxes are compared in float32 (mmcv's C++ takes float32 only)."""
    from mmcv.ops import nms, nms_rotated
    boxes, scores = random_boxes(200, 1)
    boxes, scores = boxes.to(dtype), scores.to(dtype)
    assert torch.equal(
        nms(boxes, scores, 0.5)[1],
        nms(boxes.float(), scores.float(), 0.5)[1])
    rotated, scores = random_rotated(200, 2)
    rotated, scores = rotated.to(dtype), scores.to(dtype)
    assert torch.equal(
        nms_rotated(rotated, scores, 0.3)[1],
        nms_rotated(rotated.float(), scores.float(), 0.3)[1])


@pytest.mark.parametrize('threshold', [0.1, 0.5])
def test_nms_rotated_matches_greedy(pytorch_kernels, threshold):
    from mmcv.ops import nms_rotated
    boxes, scores = random_rotated(250, 3)
    dets, keep = nms_rotated(boxes, scores, threshold)
    assert keep.dtype == torch.int64
    assert keep.tolist() == greedy_nms(
        scores, shapely_overlaps(boxes), threshold, strict=False)
    assert torch.equal(dets, torch.cat([boxes[keep], scores[keep, None]], 1))
    # the same boxes with counter-clockwise angles
    ccw = boxes * torch.tensor([1., 1., 1., 1., -1.])
    assert nms_rotated(ccw, scores, threshold, clockwise=False)[1].equal(keep)


def test_nms_rotated_edge_cases(pytorch_kernels):
    from mmcv.ops import nms_rotated
    boxes = torch.tensor([
        [1., 1., 2., 2., 0.],
        [1., 0.5, 2., 1., 0.],  # IoU with the first: exactly 0.5
        [1., 1., 2., 2., HALF_PI],  # the first turned by pi/2: IoU 1
        [9., 9., 0., 0., 0.],  # zero size: overlaps nothing
        [9., 9., 0., 0., 0.],
        [9., 9., 40., 1e-2, 0.3],  # very thin
    ])
    scores = torch.tensor([0.9, 0.8, 0.7, 0.6, 0.5, 0.4])
    # the CPU kernel suppresses at IoU >= the threshold
    assert nms_rotated(boxes, scores, 0.5)[1].tolist() == [0, 3, 4, 5]
    assert nms_rotated(boxes, scores, 0.51)[1].tolist() == [0, 1, 3, 4, 5]
    dets, keep = nms_rotated(boxes[:0], scores[:0], 0.5)
    assert dets.shape == (0, 5) and keep is None  # the wrapper's answer
    kernel_keep = kernel_module.nms_rotated(boxes[:0], scores[:0], None, None,
                                            None, 0.5, False)
    assert kernel_keep.dtype == torch.int64 and kernel_keep.shape == (0, )


def test_nms_rotated_labels_do_not_separate(pytorch_kernels):
    """mmcv 2.0.1's kernels (CPU and CUDA) only skip the label column that
    the wrapper appends: boxes of different labels suppress each other."""
    from mmcv.ops import nms_rotated
    boxes, scores = random_rotated(150, 4)
    labels = torch.arange(150) % 3
    keep = nms_rotated(boxes, scores, 0.2, labels=labels)[1]
    assert keep.tolist() == nms_rotated(boxes, scores, 0.2)[1].tolist()
    assert keep.tolist() == greedy_nms(
        scores, shapely_overlaps(boxes), 0.2, strict=False)
    # the positional and keyword calls of the wrapper
    dets = torch.cat([boxes, labels[:, None].float()], 1)
    order = scores.sort(0, descending=True)[1]
    by_keyword = kernel_module.nms_rotated(
        dets,
        scores,
        order,
        dets[order],
        labels,
        iou_threshold=0.2,
        multi_label=True)
    assert by_keyword.tolist() == keep.tolist()


@pytest.mark.parametrize('rotated', [False, True])
@pytest.mark.parametrize('split_thr', [10000, 50])
def test_batched_nms(pytorch_kernels, rotated, split_thr):
    """Per-class NMS, kept boxes in score order (``split_thr`` below the
    number of boxes runs mmcv's per-class loop)."""
    from mmcv.ops import batched_nms

    # no equal scores: a class's ties may sort apart from the whole set's
    if rotated:
        boxes, scores = random_rotated(240, 5, ties=False)
        cfg = dict(type='nms_rotated', iou_threshold=0.2)
        overlaps = shapely_overlaps(boxes)
    else:
        boxes, scores = random_boxes(240, 5, ties=False)
        cfg = dict(type='nms', iou_threshold=0.4)
        overlaps = horizontal_overlaps(boxes, 0)
    idxs = torch.arange(240) % 4
    dets, keep = batched_nms(boxes, scores, idxs,
                             dict(cfg, split_thr=split_thr))
    expected = []
    for label in range(4):
        members = (idxs == label).nonzero()[:, 0]

        def class_overlaps(i, js, members=members):
            return overlaps(members[i].item(), members[js].numpy())

        expected += members[greedy_nms(
            scores[members],
            class_overlaps,
            cfg['iou_threshold'],
            strict=not rotated)].tolist()
    assert sorted(keep.tolist()) == sorted(expected)
    assert (scores[keep].diff() <= 0).all()
    assert torch.equal(dets[:, -1], scores[keep])


@pytest.mark.parametrize('rotated', [False, True])
def test_many_boxes_in_blocks(pytorch_kernels, monkeypatch, rotated):
    """3000 boxes in blocks of 128 (many blocks, some fully suppressed) give
    the greedy result."""
    from mmcv.ops import nms, nms_rotated
    monkeypatch.setattr(kernel_module, 'BLOCK_ROWS', 128)
    monkeypatch.setattr(kernel_module, 'PAIRS_PER_CALL', 128 * 128)
    if rotated:
        boxes, scores = random_rotated(3000, 6, spread=300., size=40.)
        keep = nms_rotated(boxes, scores, 0.3)[1]
        expected = greedy_nms(
            scores, kernel_overlaps(boxes, scores), 0.3, strict=False)
    else:
        boxes, scores = random_boxes(3000, 6, spread=300., size=40.)
        keep = nms(boxes, scores, 0.3)[1]
        expected = greedy_nms(
            scores, horizontal_overlaps(boxes, 0), 0.3, strict=True)
    assert keep.tolist() == expected
    assert 300 < len(expected) < 2700  # both kept and suppressed boxes


@pytest.mark.parametrize('rotated', [False, True])
def test_chains_and_suppressed_blocks(pytorch_kernels, monkeypatch, rotated):
    """A chain of boxes, each overlapping the next (greedy keeps every other
    one: a block needs as many rounds as boxes), then copies of the first
    box (whole blocks suppressed)."""
    from mmcv.ops import nms, nms_rotated
    monkeypatch.setattr(kernel_module, 'BLOCK_ROWS', 16)
    monkeypatch.setattr(kernel_module, 'PAIRS_PER_CALL', 16 * 16)
    x = torch.arange(100.) * 3  # width 4, step 3: IoU 1/7 with the next
    chain = torch.stack([x, torch.zeros(100), x + 4, torch.ones(100)], 1)
    boxes = torch.cat([chain, chain[:1].expand(60, 4)])
    scores = torch.cat([torch.linspace(1, 0.5, 100), torch.full((60, ), 0.1)])
    expected = list(range(0, 100, 2))
    if rotated:
        centres = (boxes[:, :2] + boxes[:, 2:]) / 2
        sizes = boxes[:, 2:] - boxes[:, :2]
        boxes = torch.cat([centres, sizes, torch.zeros(160, 1)], 1)
        assert nms_rotated(boxes, scores, 0.1)[1].tolist() == expected
    else:
        assert nms(boxes, scores, 0.1)[1].tolist() == expected


PARITY_SCRIPT = '''
from mmcv.ops import batched_nms, nms, nms_rotated
for key, (boxes, scores) in inputs['horizontal'].items():
    for offset in (0, 1):
        outputs['nms', key, offset] = nms(
            boxes, scores, 0.5, offset=offset)[1]
    outputs['batched_nms', key] = batched_nms(
        boxes, scores, inputs['idxs'][:len(boxes)],
        dict(type='nms', iou_threshold=0.6))[1]
for key, (boxes, scores) in inputs['rotated'].items():
    for threshold in (0.1, 0.5):
        outputs['nms_rotated', key, threshold] = nms_rotated(
            boxes, scores, threshold)[1]
    outputs['nms_rotated_labels', key] = nms_rotated(
        boxes, scores, 0.2, labels=inputs['idxs'][:len(boxes)])[1]
    outputs['batched_nms_rotated', key] = batched_nms(
        boxes, scores, inputs['idxs'][:len(boxes)],
        dict(type='nms_rotated', iou_threshold=0.1))[1]
'''


def parity_inputs():
    """Random and tie-heavy inputs: duplicate boxes, equal scores, integer
    corners. Rotated boxes with integer corners and angles in {0, +-pi/2}
    are left out: compiled mmcv's IoU is wrong for many of their pairs
    (mmcv#2933, see test_box_iou_rotated.py), so its NMS differs there."""
    gen = torch.Generator().manual_seed(7)
    grid = torch.randint(0, 20, (500, 2), generator=gen).float()
    integer = torch.cat(
        [grid, grid + torch.randint(1, 6, (500, 2), generator=gen)], 1)
    horizontal = {
        'random': random_boxes(2000, 8, spread=400., ties=False),
        'ties': random_boxes(2000, 9, spread=400.),
        'integer': (integer, torch.randint(0, 3, (500, ),
                                           generator=gen).float()),
    }
    rotated = {
        'random': random_rotated(1000, 10, spread=300., ties=False),
        'ties': random_rotated(1000, 11, spread=300.),
    }
    return horizontal, rotated, torch.randint(0, 5, (2000, ), generator=gen)


def our_result(name, boxes, scores, idxs, *args):
    """The kept indices of PARITY_SCRIPT's call ``name``, ours."""
    from mmcv.ops import batched_nms, nms, nms_rotated
    idxs = idxs[:len(boxes)]
    if name == 'nms':
        return nms(boxes, scores, 0.5, offset=args[0])[1]
    if name == 'batched_nms':
        return batched_nms(boxes, scores, idxs,
                           dict(type='nms', iou_threshold=0.6))[1]
    if name == 'nms_rotated':
        return nms_rotated(boxes, scores, args[0])[1]
    if name == 'nms_rotated_labels':
        return nms_rotated(boxes, scores, 0.2, labels=idxs)[1]
    return batched_nms(boxes, scores, idxs,
                       dict(type='nms_rotated', iou_threshold=0.1))[1]


def test_parity_with_compiled_mmcv(pytorch_kernels, compiled_mmcv):
    """The same indices in the same order as the compiled kernels."""
    horizontal, rotated, idxs = parity_inputs()
    compiled = compiled_mmcv(
        PARITY_SCRIPT, horizontal=horizontal, rotated=rotated, idxs=idxs)
    assert len(compiled) == 17
    for (name, key, *args), expected in compiled.items():
        inputs = rotated[key] if 'rotated' in name else horizontal[key]
        ours = our_result(name, *inputs, idxs, *args)
        assert ours.tolist() == expected.tolist(), (name, key, *args)
