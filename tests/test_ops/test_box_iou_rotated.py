"""``box_iou_rotated``'s PyTorch kernel, through mmcv's own wrapper, against
shapely polygon overlaps and, where the wheel is cached, compiled mmcv."""
import math

import pytest
import torch
from shapely.geometry import Polygon

from sm3det_compat.ops import box_iou_rotated as kernel_module

HALF_PI = math.pi / 2

# one torch thread, as the C++ kernels (see conftest.one_thread)
pytestmark = pytest.mark.usefixtures('one_thread')


def corners(box, clockwise=True):
    """The 4 corners of (cx, cy, w, h, angle) as mmcv's docstring defines
    them: ``centre + R @ (+-w/2, +-h/2)``, R rotating clockwise on screen
    (y down) for ``clockwise`` and counter-clockwise otherwise."""
    cx, cy, w, h, angle = (float(v) for v in box)
    cos, sin = math.cos(angle), math.sin(angle)
    if not clockwise:
        sin = -sin
    return [(cx + cos * x - sin * y, cy + sin * x + cos * y)
            for x, y in ((-w / 2, -h / 2), (w / 2, -h / 2), (w / 2, h / 2),
                         (-w / 2, h / 2))]


def shapely_overlaps(boxes1, boxes2, mode='iou', aligned=False, cw=True):
    """float64 IoU / IoF from shapely polygon intersections."""
    polys1 = [Polygon(corners(b, cw)) for b in boxes1]
    polys2 = [Polygon(corners(b, cw)) for b in boxes2]

    def overlap(p1, p2):
        inter = p1.intersection(p2).area
        base = p1.area + p2.area - inter if mode == 'iou' else p1.area
        return inter / base if base > 0 else 0.

    if aligned:
        return torch.tensor([overlap(p, q) for p, q in zip(polys1, polys2)],
                            dtype=torch.float64)
    return torch.tensor([[overlap(p, q) for q in polys2] for p in polys1],
                        dtype=torch.float64).view(len(polys1), len(polys2))


def random_boxes(num, seed, spread=40., size=20.):
    """Overlapping boxes with angles over [-pi, pi], a quarter of them at or
    next to +-pi/2."""
    gen = torch.Generator().manual_seed(seed)
    centres = torch.rand(num, 2, generator=gen) * spread
    sizes = torch.rand(num, 2, generator=gen) * size + 0.5
    angles = (torch.rand(num, generator=gen) * 2 - 1) * math.pi
    near = torch.rand(num, generator=gen) < 0.25
    offsets = torch.tensor([0., 1e-6, -1e-6, 1e-3, -1e-3])
    pick = torch.randint(len(offsets), (num, ), generator=gen)
    sign = torch.where(torch.rand(num, generator=gen) < 0.5, 1., -1.)
    angles = torch.where(near, sign * HALF_PI + offsets[pick], angles)
    return torch.cat([centres, sizes, angles[:, None]], 1)


def special_boxes():
    """Hard cases: coincident boxes, +-pi/2 and across it, a box and its
    w/h swap at pi/2, zero-size and very thin boxes, touching boxes, nested
    boxes, huge and tiny angles."""
    return torch.tensor([
        [10., 10., 8., 4., 0.],
        [10., 10., 8., 4., 0.],  # coincident
        [10., 10., 4., 8., HALF_PI],  # the same box, w/h swapped
        [10., 10., 4., 8., -HALF_PI],
        [10., 10., 8., 4., math.pi],
        [10., 10., 8., 4., HALF_PI + 1e-4],  # across pi/2
        [10., 10., 8., 4., HALF_PI - 1e-4],
        [10., 10., 8., 4., 0.3],
        [10., 10., 8., 4., 0.3 + 2 * math.pi],
        [18., 10., 8., 4., 0.],  # shares an edge with the first
        [11., 10., 2., 2., 0.],  # inside the first
        [10., 10., 0., 4., 0.],  # zero width
        [10., 10., 0., 0., 0.],  # zero size
        [10., 10., 30., 1e-2, 0.7],  # very thin
        [10., 10., 1e-2, 30., -0.9],
        [10., 10., 30., 1e-2, 0.7 + math.pi],
        [10.5, 10.5, 8., 4., 0.],
        [1e3, 1e3, 5., 5., 0.],  # far away
    ])


@pytest.mark.parametrize('mode', ['iou', 'iof'])
@pytest.mark.parametrize('aligned', [False, True])
@pytest.mark.parametrize('clockwise', [True, False])
def test_matches_shapely(pytorch_kernels, mode, aligned, clockwise):
    from mmcv.ops import box_iou_rotated
    boxes1 = torch.cat([random_boxes(50, 0), special_boxes()])
    boxes2 = torch.cat([random_boxes(50, 1), special_boxes()])
    ious = box_iou_rotated(boxes1, boxes2, mode, aligned, clockwise)
    expected = shapely_overlaps(boxes1, boxes2, mode, aligned, clockwise)
    assert ious.shape == expected.shape and ious.dtype == torch.float32
    assert torch.isfinite(ious).all()
    torch.testing.assert_close(ious.double(), expected, rtol=0, atol=2e-5)


def test_special_values(pytorch_kernels):
    from mmcv.ops import box_iou_rotated
    boxes = special_boxes()
    ious = box_iou_rotated(boxes, boxes)
    assert ious[0, 1].item() == 1
    # the same sets of corners, up to the rounding of the angles
    for i, j in [(0, 2), (0, 3), (0, 4), (7, 8)]:
        assert ious[i, j].item() == pytest.approx(1, abs=1e-5), (i, j)
    assert ious[0, 9].item() == 0  # touching only
    assert ious[11].abs().sum() == 0 and ious[:, 12].abs().sum() == 0
    iof = box_iou_rotated(boxes[10:11], boxes[:1], 'iof')
    assert iof.item() == pytest.approx(1, abs=1e-6)  # nested
    # IoU is symmetric
    torch.testing.assert_close(ious, ious.T, rtol=0, atol=1e-6)


def test_area_epsilon(pytorch_kernels):
    """mmcv's epsilon: 0 for a box of area below 1e-14, even with itself;
    the true overlap above it."""
    from mmcv.ops import box_iou_rotated
    boxes = torch.tensor([[5., 5., 1e-8, 1e-8, 0.3], [5., 5., 1e-7, 2e-7, 0.3],
                          [5., 5., 2e-7, 1e-7, 0.]])
    ious = box_iou_rotated(boxes, boxes)
    assert ious[0].abs().sum() == 0 and ious[:, 0].abs().sum() == 0
    assert ious[1, 1].item() == pytest.approx(1, abs=1e-5)
    assert ious[1, 2].item() == pytest.approx(
        shapely_overlaps(boxes[1:2], boxes[2:]).item(), abs=1e-4)


def test_extremely_thin_boxes(pytorch_kernels):
    """1e-4 thick, 3e5 times longer: an IoU to float32 precision; an IoF
    of the thin box to what float32 coordinates near 10 allow."""
    from mmcv.ops import box_iou_rotated
    thin = torch.tensor([[10., 10., 30., 1e-4, 0.7], [10., 10., 1e-4, 30., 2.],
                         [12., 9., 30., 1e-4, -HALF_PI]])
    others = random_boxes(100, 12)
    for mode, atol in (('iou', 2e-5), ('iof', 3e-3)):
        for boxes1, boxes2 in ((thin, others), (others, thin)):
            torch.testing.assert_close(
                box_iou_rotated(boxes1, boxes2, mode).double(),
                shapely_overlaps(boxes1, boxes2, mode),
                rtol=0,
                atol=atol)


def test_empty(pytorch_kernels):
    from mmcv.ops import box_iou_rotated
    boxes = random_boxes(3, 0)
    empty = boxes[:0]
    assert box_iou_rotated(empty, boxes).shape == (0, 3)
    assert box_iou_rotated(boxes, empty).shape == (3, 0)
    assert box_iou_rotated(empty, empty, aligned=True).shape == (0, )


def test_columns_after_the_fifth_are_ignored(pytorch_kernels):
    """mmrotate's mAP passes detections with their score as a 6th column."""
    from mmcv.ops import box_iou_rotated
    dets, gts = random_boxes(20, 4), random_boxes(10, 5)
    with_scores = torch.cat([dets, torch.rand(20, 1)], 1)
    assert torch.equal(
        box_iou_rotated(with_scores, gts), box_iou_rotated(dets, gts))


@pytest.mark.parametrize('dtype', [torch.float16, torch.bfloat16])
def test_half_precision_inputs(pytorch_kernels, dtype):
    """Computed in float32 from the rounded inputs, returned in their
    dtype."""
    from mmcv.ops import box_iou_rotated
    boxes1 = random_boxes(40, 2).to(dtype)
    boxes2 = random_boxes(30, 3).to(dtype)
    ious = box_iou_rotated(boxes1, boxes2)
    assert ious.dtype == dtype
    expected = box_iou_rotated(boxes1.float(), boxes2.float())
    assert (ious.float() - expected).abs().max() <= 4e-3  # one half ulp
    aligned = box_iou_rotated(boxes1, boxes1, aligned=True)
    assert aligned.dtype == dtype and (aligned.float() - 1).abs().max() < 1e-2


def test_float64_inputs(pytorch_kernels):
    from mmcv.ops import box_iou_rotated
    boxes1, boxes2 = random_boxes(20, 4).double(), random_boxes(20, 5).double()
    ious = box_iou_rotated(boxes1, boxes2)
    assert ious.dtype == torch.float64
    torch.testing.assert_close(
        ious, shapely_overlaps(boxes1, boxes2), rtol=0, atol=1e-9)


@pytest.mark.parametrize('aligned', [False, True])
def test_blocks(pytorch_kernels, monkeypatch, aligned):
    """Blocks of pairs that split rows give the same values, to the bit."""
    from mmcv.ops import box_iou_rotated
    boxes1, boxes2 = random_boxes(45, 6), random_boxes(45, 7)
    whole = box_iou_rotated(boxes1, boxes2, 'iof', aligned)
    monkeypatch.setattr(kernel_module, 'BLOCK_PAIRS', 13)
    assert torch.equal(box_iou_rotated(boxes1, boxes2, 'iof', aligned), whole)


def test_many_boxes(pytorch_kernels):
    """1500 x 1000 boxes (about 50 blocks of pairs), sampled against
    shapely."""
    from mmcv.ops import box_iou_rotated
    boxes1 = random_boxes(1500, 8, spread=300.)
    boxes2 = random_boxes(1000, 9, spread=300.)
    ious = box_iou_rotated(boxes1, boxes2)
    gen = torch.Generator().manual_seed(0)
    rows = torch.randint(1500, (20, ), generator=gen)
    torch.testing.assert_close(
        ious[rows].double(),
        shapely_overlaps(boxes1[rows], boxes2),
        rtol=0,
        atol=2e-5)


PARITY_SCRIPT = '''
from mmcv.ops import box_iou_rotated
for key, (boxes1, boxes2) in inputs.items():
    for name in ('iou', 'iof'):
        for clockwise in (True, False):
            args = (boxes1, boxes2, name)
            outputs[key, name, clockwise] = box_iou_rotated(
                *args, clockwise=clockwise)
            outputs[key, name, clockwise, 'aligned'] = box_iou_rotated(
                *args, aligned=True, clockwise=clockwise)
'''


def integer_boxes(num, seed):
    """Boxes with integer corners, turned by 0 or +-pi/2: many collinear
    edges and shared corners."""
    gen = torch.Generator().manual_seed(seed)
    corners = torch.randint(0, 20, (num, 2), generator=gen).float()
    sizes = torch.randint(1, 6, (num, 2), generator=gen).float()
    turns = torch.randint(-1, 2, (num, 1), generator=gen) * HALF_PI
    return torch.cat([corners + sizes / 2, sizes, turns], 1)


def test_parity_with_compiled_mmcv(pytorch_kernels, compiled_mmcv):
    """Within 1e-5 of the compiled kernel on random and special boxes
    (found: 4e-7 for IoU, 2e-6 for IoF), and agreeing with shapely where
    mmcv 2.0.1's kernel is off (the test checks that such pairs exist): by
    up to 4e-4 for thin boxes, its float32 corners being too coarse, and by
    up to 0.3 for boxes with collinear edges, its convex hull losing
    vertices (mmcv#2933, #2621)."""
    from mmcv.ops import box_iou_rotated
    special = special_boxes()
    thin = torch.zeros(len(special), dtype=torch.bool)
    thin[13:16] = True
    inputs = {
        'random': (torch.cat([random_boxes(300, 10), special[~thin]]),
                   torch.cat([random_boxes(300, 11), special[~thin]])),
        'thin': (torch.cat([random_boxes(100, 12), special[thin]]),
                 torch.cat([random_boxes(100, 13), special[thin]])),
        'integer': (integer_boxes(300, 14), integer_boxes(300, 15)),
    }
    compiled = compiled_mmcv(PARITY_SCRIPT, **inputs)
    off = {}
    for (key, name, clockwise, *aligned), expected in compiled.items():
        boxes1, boxes2 = inputs[key]
        ious = box_iou_rotated(boxes1, boxes2, name, bool(aligned), clockwise)
        assert ious.shape == expected.shape
        if key == 'random':
            torch.testing.assert_close(ious, expected, rtol=0, atol=1e-5)
            continue
        differ = ((ious - expected).abs() > 1e-5).nonzero()
        off[key] = off.get(key, 0) + len(differ)
        for index in differ[:50].tolist():
            i, j = index if len(index) == 2 else index * 2
            exact = shapely_overlaps(
                boxes1[i:i + 1], boxes2[j:j + 1], name, cw=clockwise)
            assert ious[tuple(index)].item() == pytest.approx(
                exact.item(), abs=2e-5)
    assert off['thin'] > 0 and off['integer'] > 0  # the known divergences
