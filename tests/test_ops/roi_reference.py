"""What the RoI align tests share: inputs and mmcv's bilinear rule, written
as plain Python (the independent reference the kernels are checked
against)."""
import math

import numpy as np
import torch


def features(shape=(2, 3, 7, 9), seed=1, dtype=torch.float64):
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(shape, generator=gen, dtype=torch.float64).to(dtype)


def corners(height, width, y, x):
    """mmcv's bilinear rule at (y, x): [(row, column, weight)], empty outside
    [-1, height] x [-1, width]; clamped to the first and last pixels."""
    if y < -1 or y > height or x < -1 or x > width:
        return []
    y, x = max(y, 0.0), max(x, 0.0)
    y0, x0 = int(y), int(x)
    if y0 >= height - 1:
        y0 = y1 = height - 1
        y = float(y0)
    else:
        y1 = y0 + 1
    if x0 >= width - 1:
        x0 = x1 = width - 1
        x = float(x0)
    else:
        x1 = x0 + 1
    ly, lx = y - y0, x - x0
    return [(y0, x0, (1 - ly) * (1 - lx)), (y0, x1, (1 - ly) * lx),
            (y1, x0, ly * (1 - lx)), (y1, x1, ly * lx)]


def grid_size(size, pooled, sampling_ratio):
    """Samples per bin along an axis (the C++ rounds size/pooled to float
    before ceil)."""
    if sampling_ratio > 0:
        return sampling_ratio
    return math.ceil(np.float32(size / pooled))


def border_probes():
    """A 3 x 4 map (1..12, float64), sample points at exactly -1 / the height
    or width and 2**-20 beyond them (rows, cols), and what a one-sample
    pooling at each gives: the edge pixel on the line, 0 past it."""
    feat = torch.arange(1.0, 13.0, dtype=torch.float64).view(1, 1, 3, 4)
    eps = 2**-20
    rows = [-1, 3, -1 - eps, 3 + eps] + [1.5] * 4
    cols = [1.5] * 4 + [-1, 4, -1 - eps, 4 + eps]
    expected = feat.new_tensor([2.5, 10.5, 0, 0, 7, 10, 0, 0])
    return feat, rows, cols, expected
