"""PyTorch versions of mmcv's ``roi_align_forward`` / ``roi_align_backward``.

RoIAlign pools each RoI ``(batch_index, x1, y1, x2, y2)`` (rows of ``rois``,
shape (N, 5), in input-image pixels; times ``spatial_scale`` they are in
feature pixels) of the feature map ``input`` (B, C, H, W) into
``aligned_height x aligned_width`` bins, output (N, C, aligned_height,
aligned_width). A bin is the average (``pool_mode`` 1) or the maximum
(``pool_mode`` 0) of a regular grid of bilinear samples of the feature map;
the grid is ``sampling_ratio`` x ``sampling_ratio``, or, when
``sampling_ratio`` <= 0, ceil(RoI height / aligned_height) x
ceil(RoI width / aligned_width), so different RoIs have different counts.

- ``roi_align_forward`` writes ``output`` and, for max pooling, the
  feature-pixel coordinates of each maximum into ``argmax_y`` / ``argmax_x``
  (same shape as ``output``; -1 where no sample beat -10000).
- ``roi_align_backward`` adds the gradient with respect to ``input``, given
  ``grad_output`` (N, C, aligned_height, aligned_width), to ``grad_input``
  (B, C, H, W): the transpose of the average's bilinear weights, or for max
  pooling the bilinear weights at the saved ``argmax_y`` / ``argmax_x``.

The semantics are those of mmcv 2.0.1's CPU kernel
(``mmcv/ops/csrc/pytorch/cpu/roi_align.cpp``): ``aligned`` shifts the RoI by
-0.5 pixel (and then a negative size is an error), without it the RoI size is
at least 1 pixel; samples outside [-1, H] x [-1, W] count as 0 and others are
clamped into the map; the average divides by the sample count. The helpers
below are shared with ``roi_align_rotated``.

The kernels work on channels-last rows of the feature map, one row per pixel,
so that a sample is four weighted rows and a bin a weighted sum of rows, which
``embedding_bag`` computes without materialising per-channel samples. The
average's backward is the transposed sum: the (pixel, bin, weight) entries
sorted by pixel, summed by ``embedding_bag`` and added with ``index_add_`` to
distinct pixels, so it is deterministic on CPU and CUDA; the max's backward
adds its four weighted pixels per bin and channel with ``index_add_``. RoIs
are processed in chunks of similar sample count, bounding the memory.
"""
import bisect
import math
from typing import NamedTuple

import torch
import torch.nn.functional as F

__all__ = ['roi_align_forward', 'roi_align_backward']

#: Upper bound on the elements of a chunk's largest tensor (e.g. the corner
#: positions of its samples, or for the max their per-channel values).
_MAX_ELEMENTS = 1 << 23


class _Grid(NamedTuple):
    """Per-RoI sampling grid, each field of shape (N,): the image, the first
    bin's top-left corner and the bin size (feature pixels, in the RoI's own
    frame for rotated RoIs), and the samples per bin along y and x."""
    batch: torch.Tensor
    start_y: torch.Tensor
    start_x: torch.Tensor
    bin_h: torch.Tensor
    bin_w: torch.Tensor
    grid_h: torch.Tensor
    grid_w: torch.Tensor

    def select(self, index):
        return _Grid(*(field[index] for field in self))

    def counts(self):
        """Samples per bin, (N,)."""
        return self.grid_h * self.grid_w


def _compute_dtype(dtype):
    """float64 stays float64 (gradcheck); other floats compute in float32."""
    return torch.float64 if dtype == torch.float64 else torch.float32


def _float_scale(spatial_scale):
    """``spatial_scale`` rounded to float32: the C++ receives a C float."""
    return torch.tensor(spatial_scale, dtype=torch.float32).item()


def _roi_size(height, width, aligned, op_name):
    """RoI size in feature pixels: at least 1 without ``aligned`` (mmcv's
    legacy rule); with it a negative size is an error, as in the C++."""
    if aligned:
        if bool(((height < 0) | (width < 0)).any()):
            raise RuntimeError(
                f'ROIs in {op_name} must have a non-negative size')
        return height, width
    return height.clamp(min=1), width.clamp(min=1)


def _grid_size(size, pooled, sampling_ratio):
    """Samples per bin along one axis, (N,) long: ``sampling_ratio`` if
    positive, else ceil(size / pooled) rounded as the C++ ``ceilf``."""
    if sampling_ratio > 0:
        return torch.full_like(size, sampling_ratio, dtype=torch.long)
    return torch.ceil((size / pooled).float()).long()


def _chunks(counts, cost):
    """Yields (RoI indices, padded samples per bin) for chunks of RoIs of
    similar sample count: sorted by count, largest first, a chunk takes the
    RoIs with at least 3/4 of its largest count (bounding the padding) and at
    most ``_MAX_ELEMENTS`` elements at ``cost`` per RoI and sample."""
    order = torch.argsort(counts, descending=True, stable=True)
    negated = (-counts[order]).tolist()  # ascending, for bisect
    start = 0
    while start < len(negated):
        count = -negated[start]
        # a RoI without samples still gets one (masked) padded sample
        samples = max(count, 1)
        stop = min(
            bisect.bisect_right(negated, -0.75 * count),
            start + max(1, _MAX_ELEMENTS // (samples * cost)))
        yield order[start:stop], samples
        start = stop


def _axis_points(start, bin_size, grid, index, pooled):
    """Sample coordinates along one axis, (n, pooled, S): bin ``p``'s sample
    ``i`` is start + p * bin + (i + .5) * bin / grid, in the C++ order of
    operations so that samples fall on the same side of pixel borders."""
    dtype = start.dtype
    p = torch.arange(pooled, dtype=dtype, device=start.device)[:, None]
    start, bin_size = start[:, None, None], bin_size[:, None, None]
    grid = grid.clamp(min=1).to(dtype)[:, None, None]  # 0 only if no samples
    within_bin = (index[:, None].to(dtype) + 0.5) * bin_size / grid
    return start + p * bin_size + within_bin


def _grid_points(grid, pooled_h, pooled_w, samples):
    """Sample coordinates of a chunk in the RoIs' frame: y (n, PH, 1, S) and
    x (n, 1, PW, S), and which of the ``samples`` padded samples per bin
    exist, (n, 1, 1, S); sample s is row s // grid_w, column s % grid_w (the
    C++ loop order, which decides ties of the max)."""
    s = torch.arange(samples, device=grid.batch.device)
    grid_w = grid.grid_w.clamp(min=1)[:, None]
    iy = torch.div(s, grid_w, rounding_mode='floor')
    ix = s - iy * grid_w
    valid = s < grid.counts()[:, None]
    y = _axis_points(grid.start_y, grid.bin_h, grid.grid_h, iy, pooled_h)
    x = _axis_points(grid.start_x, grid.bin_w, grid.grid_w, ix, pooled_w)
    return y[:, :, None], x[:, None], valid[:, None, None]


def _axis_weights(v, size):
    """One axis of mmcv's bilinear rule for coordinates ``v`` (..., L) on a
    ``size``-pixel axis: the (low, high) pixel indices and their weights,
    each (..., 2, L); weight 0 outside [-1, size]."""
    outside = (v < -1) | (v > size)
    # [-1, 0) clamps to 0; the upper bound only keeps outside samples finite
    v = v.clamp(0, size)
    low = v.long()
    edge = low >= size - 1
    low = low.clamp(max=size - 1)
    # at the last pixel the C++ moves v onto it: all weight on ``low``
    frac = torch.where(edge, 0, v - low)
    index = torch.stack((low, torch.where(edge, low, low + 1)), -2)
    weight = torch.stack((1 - frac, frac), -2)
    return index, weight.masked_fill(outside[..., None, :], 0)


def _bilinear(y, x, height, width, plane, mask):
    """Bilinear samples at (y, x) of map ``plane`` of a stack of
    height x width maps (all four broadcast together to (..., L)): the flat
    positions (plane * height + row) * width + column of the four pixels and
    their weights, each (..., 4, L), the pixels in the C++ order; samples
    where ``mask`` is False or outside [-1, height] x [-1, width] weigh 0.
    (L last keeps the broadcasts below fast.)"""
    rows, row_weights = _axis_weights(y, height)
    cols, col_weights = _axis_weights(x, width)
    rows = rows + plane[..., None, :] * height
    row_weights = row_weights * mask[..., None, :]
    # the outer product of the two axes, as the C++ w1..w4 = hy*hx ... ly*lx
    pos = rows[..., :, None, :] * width + cols[..., None, :, :]
    weight = row_weights[..., :, None, :] * col_weights[..., None, :, :]
    return pos.flatten(-3, -2), weight.flatten(-3, -2)


def _rows(features, dtype):
    """(B, C, H, W) -> (B * H * W, C) rows, one per pixel, in ``dtype``;
    contiguous (for one image the reshape alone would be a strided view,
    which ``embedding_bag`` reads about 10x slower)."""
    rows = features.permute(0, 2, 3, 1).to(dtype).contiguous()
    return rows.view(-1, features.size(1))


def _chunk_samples(grid, points, index, samples, height, width):
    """The four pixels of each sample of the RoIs ``index`` as positions in
    the stacked images' pixel rows and weights, (n, PH, PW, 4, S), the padded
    samples weighted 0."""
    y, x, valid = points(index, samples)
    return _bilinear(y, x, height, width, grid.batch[index].view(-1, 1, 1, 1),
                     valid)


def _avg_pool_forward(input, output, grid, points):
    """Writes into ``output`` (N, C, PH, PW) the average of each bin's
    samples of ``input`` (B, C, H, W); ``points(index, samples)`` gives the
    sample coordinates and mask of the RoIs ``index`` as ``_grid_points``."""
    _, channels, height, width = input.shape
    _, _, pooled_h, pooled_w = output.shape
    table = _rows(input, _compute_dtype(input.dtype))
    counts = grid.counts()
    for index, samples in _chunks(counts, 4 * pooled_h * pooled_w):
        pos, weight = _chunk_samples(grid, points, index, samples, height,
                                     width)
        # one bag per bin: the weighted sum of its samples' pixel rows
        sums = F.embedding_bag(
            pos.view(-1, samples * 4),
            table,
            per_sample_weights=weight.view(-1, samples * 4),
            mode='sum').view(-1, pooled_h, pooled_w, channels)
        # the C++ divides by at least 1: RoIs without samples give 0
        mean = sums / counts[index].clamp(min=1).view(-1, 1, 1, 1)
        output.index_copy_(0, index, mean.permute(0, 3, 1, 2).to(output.dtype))


def _sum_by_destination(dest, src, weight, rows):
    """For each distinct ``dest``, the sum of ``weight * rows[src]`` over its
    entries: (distinct destinations, sums (D, C)). Sorting the entries by
    destination lets ``embedding_bag`` do the sums, in a fixed order and
    without materialising the weighted rows as ``index_add_`` would."""
    dest, order = torch.sort(dest.flatten(), stable=True)
    targets, sizes = torch.unique_consecutive(dest, return_counts=True)
    sums = F.embedding_bag(
        src.flatten()[order],
        rows,
        sizes.cumsum(0) - sizes,
        per_sample_weights=weight.flatten()[order],
        mode='sum')
    return targets, sums


def _avg_pool_backward(grad_output, grad_input, grid, points):
    """Adds to ``grad_input`` (B, C, H, W) the gradient of
    ``_avg_pool_forward`` for ``grad_output`` (N, C, PH, PW)."""
    batch_size, channels, height, width = grad_input.shape
    _, _, pooled_h, pooled_w = grad_output.shape
    dtype = _compute_dtype(grad_output.dtype)
    grad_rows = _rows(grad_output, dtype)
    grad_table = grad_rows.new_zeros((batch_size * height * width, channels))
    counts = grid.counts()
    bins = torch.arange(pooled_h * pooled_w, device=counts.device)
    for index, samples in _chunks(counts, 4 * pooled_h * pooled_w):
        pos, weight = _chunk_samples(grid, points, index, samples, height,
                                     width)
        weight = weight / counts[index].clamp(min=1).view(-1, 1, 1, 1, 1)
        # each sample pixel's gradient comes from its bin's row of grad_rows
        src = (index[:, None] * (pooled_h * pooled_w) +
               bins).view(pos.shape[:3] + (1, 1)).expand_as(pos)
        grad_table.index_add_(
            0, *_sum_by_destination(pos, src, weight, grad_rows))
    grad_table = grad_table.view(batch_size, height, width, channels)
    grad_input += grad_table.permute(0, 3, 1, 2).to(grad_input.dtype)


def _max_pool_forward(input, output, argmax_y, argmax_x, grid, points):
    """Writes into ``output`` the maximum of each bin's samples, and its
    coordinates into ``argmax_y`` / ``argmax_x``; as the C++, the maximum
    starts at -10000 with coordinates -1 and the first larger sample wins."""
    _, channels, height, width = input.shape
    _, _, pooled_h, pooled_w = output.shape
    table = _rows(input, _compute_dtype(input.dtype))
    for index, samples in _chunks(grid.counts(),
                                  pooled_h * pooled_w * channels):
        y, x, valid = points(index, samples)
        pos, weight = _bilinear(y, x, height, width,
                                grid.batch[index].view(-1, 1, 1, 1), valid)
        values = F.embedding_bag(
            pos.transpose(-1, -2).reshape(-1, 4),
            table,
            per_sample_weights=weight.transpose(-1, -2).reshape(-1, 4),
            mode='sum').view(-1, pooled_h, pooled_w, samples, channels)
        values = values.masked_fill(~valid[..., None], -math.inf)
        best, arg = values.max(dim=3)
        shape = (-1, pooled_h, pooled_w, samples)
        best_y = y.expand(shape).gather(3, arg)
        best_x = x.expand(shape).gather(3, arg)
        # no sample above -10000: the C++ initial value and coordinates stay
        none = ~(best > -10000)
        results = ((output, best, -10000), (argmax_y, best_y, -1),
                   (argmax_x, best_x, -1))
        for out, value, fill in results:
            value = value.masked_fill(none, fill).permute(0, 3, 1, 2)
            out.index_copy_(0, index, value.to(out.dtype))


def _max_pool_backward(grad_output, argmax_y, argmax_x, grad_input, batch):
    """Adds to ``grad_input`` (B, C, H, W) each bin's gradient, spread
    bilinearly at its maximum's coordinates (none where they are -1)."""
    _, channels, height, width = grad_input.shape
    num_rois, _, pooled_h, pooled_w = grad_output.shape
    dtype = _compute_dtype(grad_output.dtype)
    grad_flat = grad_output.new_zeros(grad_input.numel(), dtype=dtype)
    channel = torch.arange(channels, device=batch.device).view(-1, 1, 1)
    step = max(1, _MAX_ELEMENTS // (4 * channels * pooled_h * pooled_w))
    for index in torch.arange(num_rois, device=batch.device).split(step):
        y, x = argmax_y[index].to(dtype), argmax_x[index].to(dtype)
        # the (image, channel) map of grad_input that each bin reaches
        plane = batch[index].view(-1, 1, 1, 1) * channels + channel
        pos, weight = _bilinear(y, x, height, width, plane, y != -1)
        grad = grad_output[index].to(dtype)[..., None, :] * weight
        grad_flat.index_add_(0, pos.flatten(), grad.flatten())
    grad_input += grad_flat.view_as(grad_input).to(grad_input.dtype)


def _roi_align_grid(rois, aligned_height, aligned_width, spatial_scale,
                    sampling_ratio, aligned, dtype):
    """The ``_Grid`` of (N, 5) RoIs and the function giving a chunk's sample
    coordinates (feature pixels) and mask."""
    rois = rois.to(dtype)
    offset = 0.5 if aligned else 0.0
    start_x, start_y, end_x, end_y = (
        rois[:, 1:5] * _float_scale(spatial_scale) - offset).unbind(1)
    roi_h, roi_w = _roi_size(end_y - start_y, end_x - start_x, aligned,
                             'RoIAlign')
    grid = _Grid(rois[:, 0].long(), start_y, start_x, roi_h / aligned_height,
                 roi_w / aligned_width,
                 _grid_size(roi_h, aligned_height, sampling_ratio),
                 _grid_size(roi_w, aligned_width, sampling_ratio))

    def points(index, samples):
        return _grid_points(
            grid.select(index), aligned_height, aligned_width, samples)

    return grid, points


def roi_align_forward(input, rois, output, argmax_y, argmax_x, aligned_height,
                      aligned_width, spatial_scale, sampling_ratio, pool_mode,
                      aligned):
    """RoIAlign of ``input`` (B, C, H, W) over ``rois`` (N, 5) into
    ``output`` (N, C, aligned_height, aligned_width), in place; for
    ``pool_mode`` 0 (max) also the maxima's feature-pixel coordinates into
    ``argmax_y`` / ``argmax_x`` (shaped as ``output``)."""
    grid, points = _roi_align_grid(rois, aligned_height, aligned_width,
                                   spatial_scale, sampling_ratio, aligned,
                                   _compute_dtype(input.dtype))
    if pool_mode == 0:
        _max_pool_forward(input, output, argmax_y, argmax_x, grid, points)
    else:
        _avg_pool_forward(input, output, grid, points)


def roi_align_backward(grad_output, rois, argmax_y, argmax_x, grad_input,
                       aligned_height, aligned_width, spatial_scale,
                       sampling_ratio, pool_mode, aligned):
    """Adds to ``grad_input`` (B, C, H, W) the gradient of
    ``roi_align_forward`` with respect to its input, for ``grad_output``
    (N, C, aligned_height, aligned_width)."""
    if pool_mode == 0:
        _max_pool_backward(grad_output, argmax_y, argmax_x, grad_input,
                           rois[:, 0].long())
    else:
        grid, points = _roi_align_grid(rois, aligned_height, aligned_width,
                                       spatial_scale, sampling_ratio, aligned,
                                       _compute_dtype(grad_output.dtype))
        _avg_pool_backward(grad_output, grad_input, grid, points)
