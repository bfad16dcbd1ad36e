"""PyTorch kernels for ``mmcv._ext.nms`` and ``mmcv._ext.nms_rotated``.

Both are the greedy non-maximum suppression of mmcv's CPU kernels
(csrc/pytorch/cpu/nms.cpp, nms_rotated.cpp): the boxes are visited by
decreasing score, in the order of ``scores.sort(0, descending=True)`` as the
C++ sorts them (so equal scores come in the same order), and a box is kept
unless a box kept before it overlaps it enough. They return the kept indices
(int64, in that order).

- ``nms(boxes, scores, iou_threshold, offset)``: ``boxes`` (N, 4) as
  (x1, y1, x2, y2), sides ``x2 - x1 + offset`` (offset 0 or 1); a box is
  suppressed when its IoU with a kept box is > ``iou_threshold``.
- ``nms_rotated(dets, scores, order, dets_sorted, labels, iou_threshold,
  multi_label)``: ``dets`` (N, 5) rotated boxes (cx, cy, w, h, angle in
  radians, as ``box_iou_rotated``), suppressed when the IoU is
  >= ``iou_threshold`` (the CPU kernel's test; mmcv's CUDA kernel uses >).
  With ``multi_label`` the wrapper appends the labels as a 6th column, which
  mmcv 2.0.1's kernels (CPU and CUDA alike) read past without comparing:
  boxes of different labels suppress each other, here too.
  ``order`` and ``dets_sorted`` (the wrapper's sort) are unused, as on CPU.
  Its IoUs are ``box_iou_rotated``'s, so it can keep other boxes than
  compiled mmcv where mmcv's rotated IoU is off (see box_iou_rotated.py).

mmcv's ``softnms``, ``nms_match`` and ``nms_quadri`` are not provided: no
SM3Det config, evaluation or tool reaches them.

Overlaps are computed in float32 (float64 for float64 boxes), the threshold
rounded to float32 as the C++ receives it. Instead of the C++ double loop,
the sorted boxes go in blocks of ``BLOCK_ROWS``: within a block, the greedy
result is the unique fixed point of "kept = not suppressed by an earlier kept
box", reached by iterating that rule from "all kept" (as many rounds as the
longest chain of suppressions); the block's kept boxes then suppress the
later boxes, in blocks of at most ``BLOCK_ROWS ** 2`` pairs. Memory is
bounded by that many pairs, whatever the number of boxes.
"""
import torch

from .box_iou_rotated import box_iou_rotated

__all__ = ['nms', 'nms_rotated']

#: Boxes resolved at once (their overlaps with each other are held).
BLOCK_ROWS = 256
#: Overlaps of kept boxes with later ones computed per call: few calls for
#: the RPN's thousands of boxes, memory bounded (about 100 MB) for any count.
PAIRS_PER_CALL = 1 << 22


def nms(boxes, scores, iou_threshold, offset):
    """Kept indices (int64) of greedy NMS on (N, 4) boxes (x1, y1, x2, y2)."""
    if boxes.numel() == 0:
        return boxes.new_empty(0, dtype=torch.long)
    order = scores.sort(0, descending=True)[1]
    x1, y1, x2, y2 = _compute_dtype(boxes)[order].unbind(1)
    areas = (x2 - x1 + offset) * (y2 - y1 + offset)
    threshold = _as_float32(iou_threshold)

    def suppresses(rows, cols):
        i, j = rows[:, None], cols
        w = torch.minimum(x2[i], x2[j]) - torch.maximum(x1[i], x1[j]) + offset
        h = torch.minimum(y2[i], y2[j]) - torch.maximum(y1[i], y1[j]) + offset
        inter = w.clamp(min=0) * h.clamp(min=0)
        return inter / (areas[i] + areas[j] - inter) > threshold

    return order[_greedy(len(order), suppresses, boxes.device)]


def nms_rotated(dets, scores, order, dets_sorted, labels, iou_threshold,
                multi_label):
    """Kept indices (int64) of greedy NMS on (N, 5) rotated boxes (a 6th
    label column is ignored, as by mmcv's kernels)."""
    if dets.numel() == 0:
        return dets.new_empty(0, dtype=torch.long)
    order = scores.sort(0, descending=True)[1]
    boxes = _compute_dtype(dets)[order, :5]
    threshold = _as_float32(iou_threshold)

    def suppresses(rows, cols):
        ious = boxes.new_empty(len(rows), len(cols))
        box_iou_rotated(boxes[rows], boxes[cols], ious, 0, False)
        return ious >= threshold

    return order[_greedy(len(order), suppresses, dets.device)]


def _greedy(num, suppresses, device):
    """Positions (in score order) that greedy NMS keeps, where
    ``suppresses(rows, cols)`` is the (len(rows), len(cols)) matrix of
    whether box ``rows[a]``, kept, suppresses box ``cols[b]`` (read only for
    rows before cols)."""
    alive = torch.ones(num, dtype=torch.bool, device=device)
    for start in range(0, num, BLOCK_ROWS):
        stop = min(start + BLOCK_ROWS, num)
        rows = start + alive[start:stop].nonzero()[:, 0]
        if len(rows) == 0:
            continue
        keep = _resolve(suppresses(rows, rows).triu(1))  # earlier on later
        alive[rows[~keep]] = False
        kept = rows[keep]
        later = stop + alive[stop:].nonzero()[:, 0]
        step = max(1, PAIRS_PER_CALL // len(kept))
        for col in range(0, len(later), step):
            cols = later[col:col + step]
            alive[cols[suppresses(kept, cols).any(0)]] = False
    return alive.nonzero()[:, 0]


def _resolve(hits):
    """Greedy keep mask within a block: ``hits`` (K, K) is strictly upper
    triangular, ``hits[i, j]`` meaning that i, if kept, suppresses j."""
    hits = hits.to(torch.float32)  # counts by a product: faster than any()
    keep = torch.ones(len(hits), dtype=torch.bool, device=hits.device)
    while True:
        # each round settles at least the next box in order
        new_keep = (keep.to(hits.dtype) @ hits) == 0
        if torch.equal(new_keep, keep):
            return keep
        keep = new_keep


def _compute_dtype(boxes):
    """Boxes as float32, or float64 if they are float64."""
    dtype = torch.float64 if boxes.dtype == torch.float64 else torch.float32
    return boxes.to(dtype)


def _as_float32(value):
    """``value`` rounded to float32, as the C++ kernels take the threshold."""
    return torch.tensor(value, dtype=torch.float32).item()
