"""mmcv's compiled rotated ops give the values worked out by hand."""
import math

import pytest
import torch
from mmcv.ops import RoIAlignRotated, box_iou_rotated, nms_rotated

# (cx, cy, w, h, angle in radians)
SQUARE = [0., 0., 2., 2., 0.]
SHIFTED = [1., 0., 2., 2., 0.]  # overlap 1 x 2 = 2, union 6
ROTATED = [0., 0., 2., 2., math.pi / 4]  # octagon overlap 8(sqrt2 - 1)
FAR = [10., 10., 2., 2., 0.]


def test_box_iou_rotated_values():
    boxes = torch.tensor([SQUARE, SHIFTED, ROTATED, FAR])
    ious = box_iou_rotated(boxes[:1], boxes)
    expected = torch.tensor([[1.0, 1 / 3, 1 / math.sqrt(2), 0.0]])
    assert torch.allclose(ious, expected, atol=1e-4)


@pytest.mark.parametrize('thr, keep', [(0.3, [0, 2]), (0.5, [0, 1, 2])])
def test_nms_rotated_suppresses_by_iou(thr, keep):
    boxes = torch.tensor([SQUARE, SHIFTED, FAR])
    scores = torch.tensor([0.9, 0.8, 0.7])
    dets, kept = nms_rotated(boxes, scores, thr)
    assert kept.tolist() == keep
    assert torch.allclose(dets[:, -1], scores[keep])


def test_roi_align_rotated_samples_a_linear_ramp():
    # The feature value is the column index, so bilinear sampling is exact:
    # a pixel's centre is at x = j + 0.5 (aligned=True), hence value = x - 0.5.
    feat = torch.arange(16.).repeat(16, 1)[None, None]
    op = RoIAlignRotated(
        output_size=2,
        spatial_scale=1.0,
        sampling_ratio=2,
        aligned=True,
        clockwise=False)
    rois = torch.tensor([[0., 8., 8., 4., 4., 0.],
                         [0., 8., 8., 4., 4., math.pi / 2]])
    out = op(feat, rois)[:, 0]
    # Unrotated: bins centred at x = 7 and 9 along the width.
    assert torch.allclose(out[0], torch.tensor([[6.5, 8.5], [6.5, 8.5]]))
    # Turned 90 degrees counterclockwise (y points down), the RoI's height
    # axis runs along +x: its top row samples x = 7, its bottom row x = 9.
    assert torch.allclose(out[1], torch.tensor([[6.5, 6.5], [8.5, 8.5]]))
