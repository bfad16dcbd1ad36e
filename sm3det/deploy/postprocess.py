"""NumPy post-processing of SM3Det's exported detections: NMS, rescaling and
patch merging, with the semantics of the PyTorch route.

An ONNX graph gives, per image, candidate detections before the final NMS,
in the pixels of the resized network input:

- ``boxes``: (M, 4) float32 ``x1, y1, x2, y2`` (horizontal boxes, "hbox")
  or (M, 5) float32 ``cx, cy, w, h, angle`` with the angle in radians, le90
  (rotated boxes, "rbox"; the corners are ``centre + R(angle) @ (+-w/2,
  +-h/2)``, clockwise on screen as y points down, as mmcv's ops take them);
- ``scores``: (M,) float32; ``labels``: (M,) int64.

This module finishes the job with numpy only, as the PyTorch model does:
mmcv 2.0.1's ``batched_nms`` (served here by the kernels of
``sm3det_compat/ops``), mmdet's ``scale_boxes``, mmrotate's
``RotatedBoxes.rescale_`` and ``merge_results_by_nms``. The arithmetic is
float32 in the same order as those kernels, so that the NMS takes the same
decisions on the same float32 inputs: the rotated IoU and the NMS keep
lists agree with ``sm3det_compat``'s bit for bit (they could only differ
where numpy's and torch's float64 cos/sin, rounded to float32, differ: not
once in 2e6 random angles). The rbox rescaling agrees to a few ulp (torch's
float32 cos, sin, atan2 and sqrt are not correctly rounded).

One deliberate difference: boxes are visited in a *stable* descending sort
of the scores (equal scores by increasing index). torch's CPU sort is not
stable (x86-simd-sort or ``std::sort``, machine-dependent), so with exactly
equal scores PyTorch's order among them is arbitrary; the kept boxes only
differ when two boxes with equal scores overlap each other beyond the
threshold, and the keep order only within runs of equal scores.

Greedy NMS runs on blocks of ``BLOCK_ROWS`` boxes in score order: the
boxes of a block are resolved among themselves, one after the other, then
the kept ones suppress the later boxes at once. Overlaps are only computed
for pairs whose axis-aligned extents meet, as any other pair has an overlap
(near) 0: 2000 rotated boxes take 5 to 35 ms. Where the threshold is so
low that such a pair could still be suppressed, every pair is computed.
"""
from typing import Sequence, Tuple

import numpy as np

__all__ = [
    'box_iou_rotated', 'nms', 'nms_rotated', 'batched_nms', 'rescale_boxes',
    'shift_boxes', 'merge_patches'
]

#: Boxes resolved among themselves at once in greedy NMS.
BLOCK_ROWS = 256
#: Rotated box pairs intersected at once (temporaries: about 1.6 KB a pair).
BLOCK_PAIRS = 1 << 15
#: Pairs of kept and later boxes tested at once (a bool and two indices
#: each).
PAIRS_PER_CALL = 1 << 22
#: Thresholds of rotated NMS from which pairs with disjoint extents are
#: skipped: their computed IoU is rounding noise, far below it.
MIN_PRUNED_ROTATED_THRESHOLD = 1e-4

# box 1's corners in order around it, as signs of its half width and height
_SIGNS_W = np.array([-1., 1., 1., -1.], np.float32)[:, None]
_SIGNS_H = np.array([-1., -1., 1., 1.], np.float32)[:, None]
_TINY = np.finfo(np.float32).tiny


def box_iou_rotated(boxes1: np.ndarray,
                    boxes2: np.ndarray,
                    aligned: bool = False) -> np.ndarray:
    """IoU of rotated boxes, as ``mmcv.ops.box_iou_rotated`` (mode 'iou',
    clockwise) computes it with ``sm3det_compat/ops/box_iou_rotated.py``.

    Args:
        boxes1 (np.ndarray): (N1, 5) ``cx, cy, w, h, angle`` (pixels,
            radians); computed in float32.
        boxes2 (np.ndarray): (N2, 5) the same; N2 == N1 when ``aligned``.
        aligned (bool): row i of ``boxes1`` against row i of ``boxes2``
            only.

    Returns:
        np.ndarray: (N1, N2) float32 IoUs, or (N1,) when ``aligned``; 0
        where a box has an area ``w * h`` below 1e-14.
    """
    terms1 = _box_terms(boxes1)
    terms2 = _box_terms(boxes2)
    if aligned:
        return _aligned_ious(terms1, terms2, np.arange(terms1.shape[1]),
                             np.arange(terms2.shape[1]))
    rows, cols = np.divmod(
        np.arange(terms1.shape[1] * terms2.shape[1]), terms2.shape[1])
    return _aligned_ious(terms1, terms2, rows,
                         cols).reshape(terms1.shape[1], terms2.shape[1])


def nms(boxes: np.ndarray, scores: np.ndarray,
        iou_threshold: float) -> np.ndarray:
    """Greedy NMS of horizontal boxes, as ``mmcv.ops.nms`` (offset 0).

    Args:
        boxes (np.ndarray): (N, 4) ``x1, y1, x2, y2`` pixels; float32.
        scores (np.ndarray): (N,) scores.
        iou_threshold (float): a box is suppressed when its IoU with a kept
            box is > this (rounded to float32).

    Returns:
        np.ndarray: (K,) int64 indices of the kept boxes, by decreasing score
        (stable: equal scores by increasing index).
    """
    order = _descending(scores)
    sorted_boxes = np.asarray(boxes, np.float32)[order]
    x1, y1, x2, y2 = sorted_boxes.T
    areas = (x2 - x1) * (y2 - y1)
    threshold = np.float32(iou_threshold)

    def suppresses(src, dst):
        w = np.minimum(x2[src], x2[dst]) - np.maximum(x1[src], x1[dst])
        h = np.minimum(y2[src], y2[dst]) - np.maximum(y1[src], y1[dst])
        inter = np.maximum(w, 0) * np.maximum(h, 0)
        with np.errstate(invalid='ignore', divide='ignore'):
            return inter / (areas[src] + areas[dst] - inter) > threshold

    # IoU > threshold >= 0 needs a positive intersection
    extents = (x1, x2, y1, y2) if threshold >= 0 else None
    return order[_greedy(len(order), extents, suppresses)]


def nms_rotated(boxes: np.ndarray, scores: np.ndarray,
                iou_threshold: float) -> np.ndarray:
    """Greedy NMS of rotated boxes, as ``mmcv.ops.nms_rotated`` (clockwise,
    no labels, as ``batched_nms`` calls it).

    Args:
        boxes (np.ndarray): (N, 5) ``cx, cy, w, h, angle`` (pixels,
            radians); float32.
        scores (np.ndarray): (N,) scores.
        iou_threshold (float): a box is suppressed when its IoU with a kept
            box is >= this (rounded to float32), as in mmcv's CPU kernel.

    Returns:
        np.ndarray: (K,) int64 indices of the kept boxes, by decreasing score
        (stable: equal scores by increasing index).
    """
    order = _descending(scores)
    sorted_boxes = np.asarray(boxes, np.float32)[order]
    terms = _box_terms(sorted_boxes)
    threshold = np.float32(iou_threshold)

    def suppresses(src, dst):
        return _aligned_ious(terms, terms, src, dst) >= threshold

    extents = None
    if threshold >= MIN_PRUNED_ROTATED_THRESHOLD:
        cx, cy, w, h, angle = sorted_boxes.astype(np.float64).T
        cos, sin = np.abs(np.cos(angle)), np.abs(np.sin(angle))
        # generous padding: only pairs that surely do not meet are skipped
        pad = 1e-3 * (w + h) + 1e-5 * (np.abs(cx) + np.abs(cy))
        half_x = 0.5 * (w * cos + h * sin) + pad
        half_y = 0.5 * (w * sin + h * cos) + pad
        extents = (cx - half_x, cx + half_x, cy - half_y, cy + half_y)
    return order[_greedy(len(order), extents, suppresses)]


def batched_nms(boxes: np.ndarray,
                scores: np.ndarray,
                labels: np.ndarray,
                iou_threshold: float,
                rotated: bool,
                class_agnostic: bool = False,
                split_thr: int = 10000) -> np.ndarray:
    """Class-wise NMS, as mmcv 2.0.1's ``batched_nms`` with
    ``dict(type='nms' or 'nms_rotated', iou_threshold=iou_threshold,
    split_thr=split_thr)``.

    Classes are kept apart by shifting the boxes of class c by
    ``c * (max + 1)`` (hbox: all coordinates, max of all of them; rbox: the
    centres, ``max = max(cx, cy) + max(w, h)``), in float32. From
    ``split_thr`` boxes on, each class is suppressed on its own (still on
    the shifted boxes, as mmcv does) and the kept boxes sorted by score.

    Args:
        boxes (np.ndarray): (N, 4) hbox or (N, 5) rbox, float32.
        scores (np.ndarray): (N,) float32.
        labels (np.ndarray): (N,) int class indices.
        iou_threshold (float): IoU threshold of ``nms`` / ``nms_rotated``.
        rotated (bool): whether ``boxes`` are rotated (``nms_rotated``).
        class_agnostic (bool): boxes of all classes suppress each other
            (in the ``split_thr`` branch, as in mmcv, still per class).
        split_thr (int): number of boxes from which classes are suppressed
            one by one.

    Returns:
        np.ndarray: (K,) int64 indices of the kept boxes, by decreasing
        score; mmcv's returned scores are ``scores[keep]``.
    """
    boxes = np.asarray(boxes, np.float32)
    scores = np.asarray(scores, np.float32)
    labels = np.asarray(labels)
    if len(boxes) == 0:
        return np.zeros(0, np.int64)
    boxes_for_nms = boxes
    if not class_agnostic:
        if rotated:
            max_coordinate = boxes[:, :2].max() + boxes[:, 2:4].max()
            offsets = labels.astype(np.float32) * (max_coordinate + 1)
            boxes_for_nms = np.concatenate(
                [boxes[:, :2] + offsets[:, None], boxes[:, 2:5]], axis=1)
        else:
            offsets = labels.astype(np.float32) * (boxes.max() + 1)
            boxes_for_nms = boxes + offsets[:, None]
    nms_op = nms_rotated if rotated else nms
    if len(boxes) < split_thr:
        return nms_op(boxes_for_nms, scores, iou_threshold)
    kept = np.zeros(len(boxes), bool)
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        kept[members[nms_op(boxes_for_nms[members], scores[members],
                            iou_threshold)]] = True
    keep = np.flatnonzero(kept)
    return keep[_descending(scores[keep])]


def rescale_boxes(boxes: np.ndarray,
                  scale_factor: Sequence[float]) -> np.ndarray:
    """Boxes from the resized network input back to the original image, as
    mmdet's ``_bbox_post_process`` does with ``scale_boxes(boxes, [1 / s
    for s in scale_factor])``: hbox multiplied by float32 ``1 / s``; rbox
    as mmrotate's ``RotatedBoxes.rescale_`` (centres scaled, sides and
    angle through the angle's cos and sin), in float32.

    Args:
        boxes (np.ndarray): (N, 4) hbox or (N, 5) rbox in input pixels.
        scale_factor (Sequence[float]): ``(w_scale, h_scale)`` that mmdet's
            ``Resize`` stores (resized / original).

    Returns:
        np.ndarray: (N, 4) or (N, 5) float32 boxes in original pixels.

    Raises:
        ValueError: boxes of another shape.
    """
    boxes = np.asarray(boxes, np.float32)
    scale_x, scale_y = (1 / s for s in scale_factor)
    factors = np.array([scale_x, scale_y], np.float32)
    if _box_dim(boxes) == 4:
        return boxes * np.tile(factors, 2)
    # correctly rounded float32 cos, sin and atan2 (torch's, and its sqrt,
    # are up to 1 ulp off: sides and angle agree to a few ulp, not bits)
    angle = boxes[:, 4:5].astype(np.float64)
    cos, sin = np.cos(angle).astype(np.float32), np.sin(angle).astype(
        np.float32)
    # torch multiplies float32 tensors by Python floats in float32
    scale_x, scale_y = factors
    w = boxes[:, 2:3] * np.sqrt((scale_x * cos)**2 + (scale_y * sin)**2)
    h = boxes[:, 3:4] * np.sqrt((scale_x * sin)**2 + (scale_y * cos)**2)
    angle = np.arctan2((scale_x * sin).astype(np.float64),
                       (scale_y * cos).astype(np.float64)).astype(np.float32)
    return np.concatenate([boxes[:, :2] * factors, w, h, angle], axis=1)


def shift_boxes(boxes: np.ndarray, offset_xy: Sequence[float]) -> np.ndarray:
    """Boxes of a patch moved into the whole image, as mmrotate's
    ``translate_bboxes``: hbox corners or rbox centres plus the patch's
    offset (rounded to float32).

    Args:
        boxes (np.ndarray): (N, 4) hbox or (N, 5) rbox in patch pixels.
        offset_xy (Sequence[float]): the patch's top-left ``x, y`` in the
            image, pixels.

    Returns:
        np.ndarray: (N, 4) or (N, 5) float32 boxes in image pixels.

    Raises:
        ValueError: boxes of another shape.
    """
    boxes = np.asarray(boxes, np.float32)
    offset = np.asarray(offset_xy).astype(np.float32)
    if _box_dim(boxes) == 4:
        return boxes + np.tile(offset, 2)
    return np.concatenate([boxes[:, :2] + offset, boxes[:, 2:]], axis=1)


def merge_patches(
        boxes: Sequence[np.ndarray],
        scores: Sequence[np.ndarray],
        labels: Sequence[np.ndarray],
        offsets: np.ndarray,
        iou_threshold: float,
        class_agnostic: bool = False,
        split_thr: int = 10000) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Detections of sliding-window patches merged into the whole image, as
    mmrotate's ``merge_results_by_nms``: each patch's boxes shifted by its
    window's offset, all patches concatenated in order, then
    ``batched_nms`` (``nms_rotated`` for (M, 5) boxes, ``nms`` for (M, 4)).
    mmrotate uses the image size only to place masks: boxes are not
    clipped.

    Args:
        boxes (Sequence[np.ndarray]): per patch, (M_p, 4) hbox or (M_p, 5)
            rbox in patch pixels.
        scores (Sequence[np.ndarray]): per patch, (M_p,) float32.
        labels (Sequence[np.ndarray]): per patch, (M_p,) int.
        offsets (np.ndarray): (P, 2) each window's top-left ``x, y`` in the
            image, pixels.
        iou_threshold (float): the merging NMS's IoU threshold.
        class_agnostic (bool): see :func:`batched_nms`.
        split_thr (int): see :func:`batched_nms`.

    Returns:
        tuple: boxes (K, 4|5) float32 in image pixels, scores (K,) float32
        and labels (K,) int64 of the kept detections, by decreasing score.
    """
    assert len(boxes) == len(scores) == len(labels) == len(offsets)
    all_boxes = np.concatenate(
        [shift_boxes(b, offset) for b, offset in zip(boxes, offsets)])
    all_scores = np.concatenate(scores).astype(np.float32)
    all_labels = np.concatenate(labels).astype(np.int64)
    keep = batched_nms(all_boxes, all_scores, all_labels, iou_threshold,
                       all_boxes.shape[-1] == 5, class_agnostic, split_thr)
    return all_boxes[keep], all_scores[keep], all_labels[keep]


def _box_dim(boxes):
    """4 for (N, 4) hbox, 5 for (N, 5) rbox; ValueError otherwise."""
    if boxes.ndim != 2 or boxes.shape[1] not in (4, 5):
        raise ValueError(f'boxes must be (N, 4) or (N, 5), got {boxes.shape}')
    return boxes.shape[1]


def _descending(scores):
    """Indices (int64) of a stable descending sort of ``scores``."""
    return np.argsort(-np.asarray(scores, np.float32), kind='stable')


def _greedy(num, extents, suppresses):
    """Positions (in score order) that greedy NMS keeps.

    Args:
        num (int): number of boxes, sorted by decreasing score.
        extents (tuple | None): (x_lo, x_hi, y_lo, y_hi) (num,) arrays,
            where boxes whose ranges do not meet never suppress each other;
            None when any box may suppress any other.
        suppresses (callable): ``suppresses(src, dst)`` -> bool array,
            whether box ``src[k]``, kept, suppresses box ``dst[k]``
            (``src[k] < dst[k]``).
    """
    alive = np.ones(num, bool)
    for start in range(0, num, BLOCK_ROWS):
        stop = min(start + BLOCK_ROWS, num)
        rows = start + np.flatnonzero(alive[start:stop])
        src, dst = _hits(rows, rows, extents, suppresses)
        # within the block, one box after the other: src ascends
        firsts = np.searchsorted(src, rows, 'left').tolist()
        lasts = np.searchsorted(src, rows, 'right').tolist()
        for row, first, last in zip(rows.tolist(), firsts, lasts):
            if first < last and alive[row]:
                alive[dst[first:last]] = False
        kept = rows[alive[rows]]
        later = stop + np.flatnonzero(alive[stop:])
        step = max(1, PAIRS_PER_CALL // max(1, len(kept)))
        for begin in range(0, len(later), step):
            _, dst = _hits(kept, later[begin:begin + step], extents,
                           suppresses)
            alive[dst] = False
    return np.flatnonzero(alive)


def _hits(rows, cols, extents, suppresses):
    """Pairs (src from ``rows``, dst from ``cols``, src < dst, in row-major
    order) where src suppresses dst."""
    meet = rows[:, None] < cols[None, :]
    if extents is not None:
        x_lo, x_hi, y_lo, y_hi = extents
        meet &= x_lo[cols] <= x_hi[rows, None]
        meet &= x_lo[rows, None] <= x_hi[cols]
        meet &= y_lo[cols] <= y_hi[rows, None]
        meet &= y_lo[rows, None] <= y_hi[cols]
    a, b = np.nonzero(meet)
    src, dst = rows[a], cols[b]
    hit = suppresses(src, dst)
    return src[hit], dst[hit]


def _box_terms(boxes):
    """(9, N) float32: cx, cy, w, h, angle, its cos and sin (computed in
    float64), the area and whether it is below 1e-14."""
    cx, cy, w, h, angle = np.asarray(boxes, np.float32)[:, :5].T
    area = w * h
    angle64 = angle.astype(np.float64)
    return np.stack([
        cx, cy, w, h, angle,
        np.cos(angle64).astype(np.float32),
        np.sin(angle64).astype(np.float32), area,
        (area.astype(np.float64) < 1e-14).astype(np.float32)
    ])


def _aligned_ious(terms1, terms2, rows, cols):
    """IoUs (float32) of the box pairs ``(rows[k], cols[k])`` given by the
    columns of the (9, N) terms, ``BLOCK_PAIRS`` pairs at a time."""
    out = np.empty(len(rows), np.float32)
    with np.errstate(all='ignore'):  # zero-size boxes give 0 in the end
        for start in range(0, len(rows), BLOCK_PAIRS):
            part = slice(start, start + BLOCK_PAIRS)
            out[part] = _pair_ious(terms1[:, rows[part]], terms2[:,
                                                                 cols[part]])
    return out


def _pair_ious(terms1, terms2):
    """IoUs of the box pairs in the columns of the (9, P) terms."""
    area1, tiny1 = terms1[7:]
    area2, tiny2 = terms2[7:]
    inter = _intersection_area(terms1, terms2)
    return np.where((tiny1 + tiny2) > 0, np.float32(0),
                    inter / (area1 + area2 - inter))


def _intersection_area(frame, other):
    """Intersection areas of the pairs, computed in the axes of the
    ``frame`` boxes scaled to the square [-1/2, 1/2]^2 (see
    ``sm3det_compat/ops/box_iou_rotated.py`` for the method)."""
    x1, y1, w1, h1, angle1, cos1, sin1, area1, _ = frame
    x2, y2, w2, h2, angle2 = other[:5]
    dx, dy = x2 - x1, y2 - y1
    cu = (cos1 * dx + sin1 * dy) / w1
    cv = (cos1 * dy - sin1 * dx) / h1
    # relative angle in float64, as the kernel: exact for thin boxes
    relative = angle2.astype(np.float64) - angle1.astype(np.float64)
    cos_r = np.cos(relative).astype(np.float32)
    sin_r = np.sin(relative).astype(np.float32)
    wu, wv = 0.5 * w2 * cos_r / w1, 0.5 * w2 * sin_r / h1
    hu, hv = -0.5 * h2 * sin_r / w1, 0.5 * h2 * cos_r / h1
    u, v = _project_on_square(cu + _SIGNS_W * wu + _SIGNS_H * hu,
                              cv + _SIGNS_W * wv + _SIGNS_H * hv)
    return _polygon_area(u, v) * area1


def _project_on_square(u, v):
    """(20, P) outline of the (4, P) polygons projected onto the square:
    each edge cut where u or v crosses -1/2 or 1/2, then clamped."""
    du, dv = np.roll(u, -1, 0) - u, np.roll(v, -1, 0) - v
    u_first, u_last = _crossings(u, du)
    v_first, v_last = _crossings(v, dv)
    ts = np.stack([
        np.zeros_like(u),
        np.minimum(u_first, v_first),
        np.maximum(u_first, v_first),
        np.minimum(u_last, v_last),
        np.maximum(u_last, v_last)
    ], 1).clip(0, 1)
    u = (u[:, None] + ts * du[:, None]).clip(-0.5, 0.5)
    v = (v[:, None] + ts * dv[:, None]).clip(-0.5, 0.5)
    return u.reshape(-1, u.shape[-1]), v.reshape(-1, v.shape[-1])


def _crossings(a, da):
    """Edge parameters, in increasing order, where ``a + t * da`` is -1/2
    and 1/2."""
    safe = np.copysign(np.maximum(np.abs(da), _TINY), da)
    t_lo, t_hi = (-0.5 - a) / safe, (0.5 - a) / safe
    return np.minimum(t_lo, t_hi), np.maximum(t_lo, t_hi)


def _polygon_area(u, v):
    """Shoelace area of the closed (K, P) polygons, summed row after row as
    the kernel does."""
    u = u - _sum_rows(u) / len(u)
    u_next, v_next = np.roll(u, -1, 0), np.roll(v, -1, 0)
    return np.abs(_sum_rows((u + u_next) * (v_next - v))) * 0.5


def _sum_rows(rows):
    """Sum over axis 0, row after row."""
    total = rows[0].copy()
    for row in rows[1:]:
        total += row
    return total
