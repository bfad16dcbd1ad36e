"""mmcv's RoIAlignRotated with standard ONNX operators (``GridSample``).

mmcv exports RoIAlignRotated as a custom operator
(``mmcv::MMCVRoIAlignRotated``), which onnxruntime does not have. Here each
RoI's bilinear samples are laid out as one grid and read with
``grid_sample``, with mmcv's rules
(``mmcv/ops/csrc/pytorch/cpu/roi_align_rotated.cpp``, and
``sm3det_compat/ops/roi_align_rotated.py``): a sample more than one pixel
outside the map is 0, one within a pixel of the border reads the border
pixel, and every bin is the mean of its ``sampling_ratio`` x
``sampling_ratio`` samples. ``grid_sample`` with ``align_corners=True``
reads pixel centres at integer coordinates, as mmcv does.
"""
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor


def roi_align_rotated(feat: Tensor, rois: Tensor, output_size: Sequence[int],
                      spatial_scale: float, sampling_ratio: int, aligned: bool,
                      clockwise: bool) -> Tensor:
    """Pool rotated RoIs of one image's feature map.

    Args:
        feat: ``(1, C, H, W)`` feature map.
        rois: ``(R, 5)`` cx, cy, w, h (input-image pixels), theta (radians).
        output_size: ``(out_h, out_w)`` bins.
        spatial_scale: feature pixels per input pixel (1 / stride).
        sampling_ratio: samples per bin side; must be > 0 (mmcv's adaptive
            count, <= 0, depends on each RoI's size).
        aligned: shift the RoI by -0.5 feature pixel (mmcv's ``aligned``).
        clockwise: theta turns clockwise (mmcv's ``clockwise``).

    Returns:
        ``(R, C, out_h, out_w)``.
    """
    if sampling_ratio <= 0:
        raise ValueError('the exported RoIAlignRotated needs sampling_ratio '
                         f'> 0 (a fixed sample grid), got {sampling_ratio}')
    out_h, out_w = output_size
    # Tensors, not ints: the traced graph reads them from the input.
    height, width = torch._shape_as_tensor(feat)[-2:].to(feat.dtype).unbind()
    offset = 0.5 if aligned else 0.0
    center_x = rois[:, 0] * spatial_scale - offset
    center_y = rois[:, 1] * spatial_scale - offset
    roi_w = rois[:, 2] * spatial_scale
    roi_h = rois[:, 3] * spatial_scale
    if not aligned:  # mmcv's legacy mode forces at least one pixel
        roi_w, roi_h = roi_w.clamp(min=1.0), roi_h.clamp(min=1.0)
    theta = -rois[:, 4] if clockwise else rois[:, 4]
    cos, sin = torch.cos(theta), torch.sin(theta)

    # Sample positions in the RoI frame, (R, out * sampling_ratio).
    fractions_h = _sample_fractions(out_h, sampling_ratio, feat)
    fractions_w = _sample_fractions(out_w, sampling_ratio, feat)
    yy = (-roi_h / 2)[:, None] + (roi_h / out_h)[:, None] * fractions_h
    xx = (-roi_w / 2)[:, None] + (roi_w / out_w)[:, None] * fractions_w
    yy, xx = yy[:, :, None], xx[:, None, :]
    cos, sin = cos[:, None, None], sin[:, None, None]
    y = yy * cos - xx * sin + center_y[:, None, None]
    x = yy * sin + xx * cos + center_x[:, None, None]

    valid = (y >= -1) & (y <= height) & (x >= -1) & (x <= width)
    y = torch.minimum(y.clamp(min=0), height - 1)
    x = torch.minimum(x.clamp(min=0), width - 1)
    # Pixel p -> 2p / (size - 1) - 1; a one-pixel side reads pixel 0.
    grid = torch.stack((x * 2 / (width - 1).clamp(min=1) - 1, y * 2 /
                        (height - 1).clamp(min=1) - 1),
                       dim=-1)
    samples = F.grid_sample(
        feat,
        grid.reshape(1, -1, grid.shape[2], 2),
        mode='bilinear',
        padding_mode='border',
        align_corners=True)
    # -1, not R: ONNX's Reshape reads a 0 as "keep this dimension".
    bins = (out_h, sampling_ratio, out_w, sampling_ratio)
    samples = samples.reshape(feat.shape[1], -1, *bins)
    samples = samples * valid.reshape(1, -1, *bins).to(feat.dtype)
    pooled = samples.sum(dim=(3, 5)) / (sampling_ratio * sampling_ratio)
    return pooled.permute(1, 0, 2, 3)


def _sample_fractions(bins: int, sampling_ratio: int, like: Tensor) -> Tensor:
    """``bin + (i + 0.5) / sampling_ratio`` for every bin and sample: a
    sample's position in bin units from the RoI's start, ``(bins * s,)``."""
    index = torch.arange(bins * sampling_ratio, dtype=like.dtype)
    return (index //
            sampling_ratio) + (index % sampling_ratio + 0.5) / sampling_ratio
