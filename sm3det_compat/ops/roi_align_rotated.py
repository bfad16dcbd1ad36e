"""PyTorch versions of mmcv's ``roi_align_rotated_forward`` / ``_backward``.

RoIAlignRotated pools each rotated RoI ``(batch_index, cx, cy, w, h, theta)``
(rows of ``rois``, shape (N, 6): centre and size in input-image pixels, times
``spatial_scale`` in feature pixels; ``theta`` in radians) of the feature map
``input`` (B, C, H, W) into ``pooled_height x pooled_width`` bins, output
(N, C, pooled_height, pooled_width). Each bin is the average of a regular
grid of bilinear samples laid out in the RoI's frame, whose width axis points
along (cos theta, -sin theta) in (x, y) feature pixels (y down: theta turns
the RoI counter-clockwise as seen on the image; ``clockwise`` negates theta):
``sampling_ratio`` x ``sampling_ratio`` samples, or, when
``sampling_ratio`` <= 0, ceil(h / pooled_height) x ceil(w / pooled_width).

- ``roi_align_rotated_forward`` writes ``output``.
- ``roi_align_rotated_backward`` adds the gradient with respect to ``input``
  for ``grad_output`` (N, C, pooled_height, pooled_width) to ``grad_input``
  (B, C, H, W).

The semantics are those of mmcv 2.0.1's CPU kernel
(``mmcv/ops/csrc/pytorch/cpu/roi_align_rotated.cpp``): ``aligned`` shifts the
centre by -0.5 pixel (and then a negative size is an error), without it the
size is at least 1 pixel; the bilinear rule, the average over the sample
count and the chunked vectorised evaluation are those of ``roi_align``.
"""
import torch

from .roi_align import (_avg_pool_backward, _avg_pool_forward, _compute_dtype,
                        _float_scale, _Grid, _grid_points, _grid_size,
                        _roi_size)

__all__ = ['roi_align_rotated_forward', 'roi_align_rotated_backward']


def _rotated_grid(rois, pooled_height, pooled_width, spatial_scale,
                  sampling_ratio, aligned, clockwise, dtype):
    """The ``_Grid`` of (N, 6) rotated RoIs (in their own frame, centred on
    the RoI) and the function giving a chunk's sample coordinates in feature
    pixels and mask: the grid points rotated and moved to the centre."""
    rois = rois.to(dtype)
    scale = _float_scale(spatial_scale)
    offset = 0.5 if aligned else 0.0
    center_x = rois[:, 1] * scale - offset
    center_y = rois[:, 2] * scale - offset
    roi_h, roi_w = _roi_size(rois[:, 4] * scale, rois[:, 3] * scale, aligned,
                             'RoIAlignRotated')
    theta = -rois[:, 5] if clockwise else rois[:, 5]
    grid = _Grid(rois[:, 0].long(), -roi_h / 2, -roi_w / 2,
                 roi_h / pooled_height, roi_w / pooled_width,
                 _grid_size(roi_h, pooled_height, sampling_ratio),
                 _grid_size(roi_w, pooled_width, sampling_ratio))
    # float64 rounded to float32 is what the C++ float cos / sin (glibc) give
    cos, sin = (f(theta.double()).to(dtype) for f in (torch.cos, torch.sin))
    frame = torch.stack((center_y, center_x, cos, sin), 1)

    def points(index, samples):
        yy, xx, valid = _grid_points(
            grid.select(index), pooled_height, pooled_width, samples)
        cy, cx, cos, sin = frame[index].view(-1, 1, 1, 1, 4).unbind(-1)
        # (yy, xx) rotated by theta about the centre, as the C++
        return yy * cos - xx * sin + cy, yy * sin + xx * cos + cx, valid

    return grid, points


def roi_align_rotated_forward(input, rois, output, pooled_height, pooled_width,
                              spatial_scale, sampling_ratio, aligned,
                              clockwise):
    """RoIAlignRotated of ``input`` (B, C, H, W) over ``rois`` (N, 6) into
    ``output`` (N, C, pooled_height, pooled_width), in place."""
    grid, points = _rotated_grid(rois, pooled_height, pooled_width,
                                 spatial_scale, sampling_ratio, aligned,
                                 clockwise, _compute_dtype(input.dtype))
    _avg_pool_forward(input, output, grid, points)


def roi_align_rotated_backward(grad_output, rois, grad_input, pooled_height,
                               pooled_width, spatial_scale, sampling_ratio,
                               aligned, clockwise):
    """Adds to ``grad_input`` (B, C, H, W) the gradient of
    ``roi_align_rotated_forward`` with respect to its input, for
    ``grad_output`` (N, C, pooled_height, pooled_width)."""
    grid, points = _rotated_grid(rois, pooled_height, pooled_width,
                                 spatial_scale, sampling_ratio, aligned,
                                 clockwise, _compute_dtype(grad_output.dtype))
    _avg_pool_backward(grad_output, grad_input, grid, points)
