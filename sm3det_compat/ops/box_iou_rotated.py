"""PyTorch kernel for ``mmcv._ext.box_iou_rotated``.

``box_iou_rotated(bboxes1, bboxes2, ious, mode_flag, aligned)`` writes into
``ious`` the overlaps of rotated boxes given as rows ``(cx, cy, w, h, angle)``
(angle in radians; the corners are ``centre + R(angle) @ (+-w/2, +-h/2)``
with ``R = [[cos, -sin], [sin, cos]]``, clockwise on screen as y points down;
the mmcv wrapper negates the angles for ``clockwise=False``):

- ``mode_flag`` 0: intersection / union (IoU); 1: intersection / area of
  the box of ``bboxes1`` (IoF).
- ``aligned`` False: every box of ``bboxes1`` (N, 5) against every box of
  ``bboxes2`` (M, 5); ``ious`` has N * M elements, row-major.
  ``aligned`` True: row i against row i; ``ious`` has N elements.
- 0 where either box has an area ``w * h`` below 1e-14, as in mmcv's
  ``single_box_iou_rotated`` (csrc/common/box_iou_rotated_utils.hpp).

It agrees with mmcv's CPU kernel within 1e-5 (4e-7 for IoU, 2e-6 for IoF on
random boxes) except where that kernel is off and this one exact (checked
against shapely): thin boxes, where mmcv's float32 corners are too coarse
(up to 4e-4 off), and boxes with collinear edges, such as axis-aligned boxes
with shared sides, where mmcv's convex hull loses vertices (up to 0.3 off;
mmcv issues #2933, #2621).

Algorithm, on blocks of ``BLOCK_PAIRS`` box pairs at once: box 2's corners
are written in box 1's axes, scaled so that box 1 is the square
[-1/2, 1/2]^2, and box 2's outline is projected onto that square (each
coordinate clamped), after cutting each edge where it crosses the square's
lines. The straight path from an outline point to its projection never
enters the square, so the projected outline winds around each point inside
the square as the original does, and around no point outside it: its
shoelace area is the area of the intersection. No vertex sorting and no
special case for touching or coincident edges; the angle between the boxes
is taken in double, so thin boxes keep their precision. It computes in
float32 (float64 for float64 boxes), writes ``ious`` in its own dtype and
runs on any device.
"""
import torch

__all__ = ['box_iou_rotated']

#: Box pairs computed at once (temporaries: about 1.6 KB a pair).
BLOCK_PAIRS = 1 << 15

# box 1's corners in order around it, as signs of its half width and height
_SIGNS_W = (-1., 1., 1., -1.)
_SIGNS_H = (-1., -1., 1., 1.)


def box_iou_rotated(bboxes1, bboxes2, ious, mode_flag, aligned):
    """Fills ``ious`` (N * M or, aligned, N elements) with the IoU or IoF."""
    out = ious.view(-1)
    dtype = torch.float64 if bboxes1.dtype == torch.float64 else torch.float32
    terms1 = _box_terms(bboxes1.to(dtype))
    terms2 = _box_terms(bboxes2.to(dtype))
    cols = bboxes2.size(0)
    for start in range(0, out.numel(), BLOCK_PAIRS):
        stop = min(start + BLOCK_PAIRS, out.numel())
        pairs = torch.arange(start, stop, device=out.device)
        rows = pairs if aligned else pairs.div(cols, rounding_mode='floor')
        columns = pairs if aligned else pairs % cols
        out[start:stop] = _pair_ious(terms1[:, rows], terms2[:, columns],
                                     mode_flag)


def _box_terms(boxes):
    """(9, N): cx, cy, w, h, angle, its cos and sin, the area and whether it
    is below 1e-14 (the boxes that get an overlap of 0). Columns after the
    fifth (e.g. scores, as mmrotate's mAP passes them) are ignored, as by
    the C++."""
    cx, cy, w, h, angle = boxes[:, :5].unbind(1)
    area = w * h
    return torch.stack([
        cx, cy, w, h, angle,
        torch.cos(angle.double()).to(boxes.dtype),
        torch.sin(angle.double()).to(boxes.dtype), area,
        (area.double() < 1e-14).to(boxes.dtype)
    ])


def _pair_ious(terms1, terms2, mode_flag):
    """IoU (``mode_flag`` 0) or IoF (1) of the box pairs in the columns of
    the (9, P) terms."""
    area1, tiny1 = terms1[7:]
    area2, tiny2 = terms2[7:]
    inter = _intersection_area(terms1, terms2)
    base = area1 + area2 - inter if mode_flag == 0 else area1
    return torch.where((tiny1 + tiny2) > 0, 0., inter / base)


def _intersection_area(frame, other):
    """Area of the intersections of the pairs of boxes, computed in the
    axes of the ``frame`` boxes scaled to their size, where they are the
    square [-1/2, 1/2]^2 (an IoF keeps the precision of a ratio to them,
    however thin they are)."""
    x1, y1, w1, h1, angle1, cos1, sin1, area1, _ = frame
    x2, y2, w2, h2, angle2, *_ = other
    dx, dy = x2 - x1, y2 - y1
    cu = (cos1 * dx + sin1 * dy) / w1
    cv = (cos1 * dy - sin1 * dx) / h1
    # angle of the other box relative to the frame, in double: exact for
    # thin boxes
    relative = angle2.double() - angle1.double()
    cos_r, sin_r = torch.cos(relative).to(x1), torch.sin(relative).to(x1)
    wu, wv = 0.5 * w2 * cos_r / w1, 0.5 * w2 * sin_r / h1
    hu, hv = -0.5 * h2 * sin_r / w1, 0.5 * h2 * cos_r / h1
    signs_w = frame.new_tensor(_SIGNS_W)[:, None]
    signs_h = frame.new_tensor(_SIGNS_H)[:, None]
    u, v = _project_on_square(cu + signs_w * wu + signs_h * hu,
                              cv + signs_w * wv + signs_h * hv)
    return _polygon_area(u, v) * area1  # back from the unit square


def _project_on_square(u, v):
    """(20, P) vertices of the outline of the polygons with (4, P) vertices
    u, v projected onto [-1/2, 1/2]^2: each edge is cut where u or v crosses
    -1/2 or 1/2 (up to 4 times, in order along it), then the coordinates are
    clamped."""
    du, dv = u.roll(-1, 0) - u, v.roll(-1, 0) - v
    u_first, u_last = _crossings(u, du)
    v_first, v_last = _crossings(v, dv)
    # an edge that leaves one band before it enters the other passes outside
    # a corner: there the middle two cuts project to that corner, unordered
    ts = torch.stack([
        torch.zeros_like(u),
        torch.minimum(u_first, v_first),
        torch.maximum(u_first, v_first),
        torch.minimum(u_last, v_last),
        torch.maximum(u_last, v_last)
    ], 1).clamp(0, 1)
    u = (u[:, None] + ts * du[:, None]).clamp(-0.5, 0.5)
    v = (v[:, None] + ts * dv[:, None]).clamp(-0.5, 0.5)
    return u.flatten(0, 1), v.flatten(0, 1)


def _crossings(a, da):
    """Edge parameters, in increasing order, where ``a + t * da`` is -1/2
    and 1/2; any (no nan) along edges where ``a`` is constant."""
    # da of 0 made the tiniest positive number (faster than torch.where)
    safe = torch.copysign(da.abs().clamp(min=torch.finfo(da.dtype).tiny), da)
    t_lo, t_hi = (-0.5 - a) / safe, (0.5 - a) / safe
    return torch.minimum(t_lo, t_hi), torch.maximum(t_lo, t_hi)


def _polygon_area(u, v):
    """Shoelace area of the closed polygons with (K, P) vertices u, v."""
    u = u - _sum_rows(u) / len(u)  # small terms: less cancellation
    u_next, v_next = u.roll(-1, 0), v.roll(-1, 0)
    return _sum_rows((u + u_next) * (v_next - v)).abs() * 0.5


def _sum_rows(rows):
    """Sum over dim 0, row after row: torch's reductions round differently
    with the number of columns, and a pair's overlap must not depend on the
    block that it falls in."""
    total = rows[0].clone()
    for row in rows[1:]:
        total += row
    return total
