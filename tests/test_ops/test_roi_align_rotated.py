"""The PyTorch roi_align_rotated kernels, through mmcv's own wrapper.

References: a per-sample Python loop written from the semantics of mmcv's
CPU kernel (rotated sample grid, bilinear rule, average and its gradient),
float64 ``gradcheck``, float32 for half-precision inputs, and mmcv's compiled
kernels (when their wheel is cached) at a realistic size and on edge cases.
"""
import math

import pytest
import torch

from roi_reference import border_probes, corners, features, grid_size

OUT_SIZE = (3, 4)
SCALE = 0.5  # image pixels -> feature pixels; the 7 x 9 map spans 14 x 18


def _rois(aligned, seed=0):
    """(N, 6) float64 rotated RoIs (batch, cx, cy, w, h, theta) on a 2-image
    batch: random ones partly outside the map at any angle, then angles at
    and across +-pi/2 and pi, zero-size, tiny, fully outside and covering
    ones, and without ``aligned`` a negative size (raised to 1 pixel)."""
    gen = torch.Generator().manual_seed(seed)
    n = 8
    center = torch.rand(n, 2, generator=gen, dtype=torch.float64) * 24 - 3
    size = torch.rand(n, 2, generator=gen, dtype=torch.float64) * 14
    theta = (torch.rand(n, 1, generator=gen, dtype=torch.float64) - 0.5) * 8
    half_pi = math.pi / 2
    special = [[8.0, 6.0, 10.0, 4.0, half_pi], [8.0, 6.0, 10.0, 4.0, -half_pi],
               [7.0, 8.0, 6.0, 9.0, half_pi - 1e-3],
               [7.0, 8.0, 6.0, 9.0, half_pi + 1e-3],
               [9.0, 5.0, 7.0, 3.0, -half_pi + 1e-3],
               [9.0, 5.0, 7.0, 3.0, -half_pi - 1e-3],
               [10.0, 7.0, 12.0, 5.0, math.pi], [5.0, 5.0, 0.0, 0.0, 0.3],
               [6.0, 4.0, 0.2, 0.1, -0.7], [-15.0, -12.0, 6.0, 4.0, 0.2],
               [9.0, 7.0, 30.0, 22.0, 0.1]]
    if not aligned:
        special.append([8.0, 6.0, -3.0, -2.0, 0.4])
    boxes = torch.cat((torch.cat(
        (center, size, theta), 1), torch.tensor(special, dtype=torch.float64)))
    batch = torch.arange(len(boxes), dtype=torch.float64) % 2
    return torch.cat((batch[:, None], boxes), 1)


def _reference(feat, rois, sampling_ratio, aligned, clockwise, grad_out):
    """Per-sample loop, channels as vectors: the output and the input
    gradient for ``grad_out``."""
    _, _, height, width = feat.shape
    pooled_h, pooled_w = OUT_SIZE
    out = feat.new_zeros(grad_out.shape)
    grad_in = torch.zeros_like(feat)
    for n, (b, cx, cy, roi_w, roi_h, theta) in enumerate(rois.tolist()):
        b = int(b)
        offset = 0.5 if aligned else 0.0
        cx, cy = cx * SCALE - offset, cy * SCALE - offset
        roi_w, roi_h = roi_w * SCALE, roi_h * SCALE
        if not aligned:
            roi_w, roi_h = max(roi_w, 1.0), max(roi_h, 1.0)
        if clockwise:
            theta = -theta
        cos, sin = math.cos(theta), math.sin(theta)
        bin_h, bin_w = roi_h / pooled_h, roi_w / pooled_w
        grid_h = grid_size(roi_h, pooled_h, sampling_ratio)
        grid_w = grid_size(roi_w, pooled_w, sampling_ratio)
        count = max(grid_h * grid_w, 1)
        for ph in range(pooled_h):
            for pw in range(pooled_w):
                g = grad_out[n, :, ph, pw]
                for iy in range(grid_h):
                    yy = -roi_h / 2 + ph * bin_h + (iy + 0.5) * bin_h / grid_h
                    for ix in range(grid_w):
                        xx = (-roi_w / 2 + pw * bin_w +
                              (ix + 0.5) * bin_w / grid_w)
                        # counter-clockwise by theta about the centre
                        y = yy * cos - xx * sin + cy
                        x = yy * sin + xx * cos + cx
                        for r, c, w in corners(height, width, y, x):
                            out[n, :, ph, pw] += w * feat[b, :, r, c] / count
                            grad_in[b, :, r, c] += g * w / count
    return out, grad_in


def _pool(feat, rois, sampling_ratio, aligned, clockwise, grad_out=None):
    """mmcv's roi_align_rotated: output, and input gradient for grad_out."""
    from mmcv.ops import roi_align_rotated
    inp = feat.detach().requires_grad_()
    out = roi_align_rotated(inp, rois, OUT_SIZE, SCALE, sampling_ratio,
                            aligned, clockwise)
    out.backward(torch.ones_like(out) if grad_out is None else grad_out)
    return out.detach(), inp.grad


@pytest.mark.parametrize('aligned', [True, False])
@pytest.mark.parametrize('clockwise', [False, True])
@pytest.mark.parametrize('sampling_ratio', [0, 2])
def test_matches_reference_loop(pytorch_kernels, aligned, clockwise,
                                sampling_ratio):
    """Output and input gradient, float64, against the loop."""
    feat = features()
    rois = _rois(aligned)
    grad_out = features((len(rois), feat.size(1)) + OUT_SIZE, seed=2)
    ref, ref_grad = _reference(feat, rois, sampling_ratio, aligned, clockwise,
                               grad_out)
    out, grad = _pool(feat, rois, sampling_ratio, aligned, clockwise, grad_out)
    torch.testing.assert_close(out, ref, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(grad, ref_grad, rtol=1e-12, atol=1e-12)


def test_clockwise_negates_the_angle(pytorch_kernels):
    feat = features()
    rois = _rois(True)
    flipped = rois.clone()
    flipped[:, 5] = -flipped[:, 5]
    torch.testing.assert_close(
        _pool(feat, rois, 2, True, True), _pool(feat, flipped, 2, True, False))


def test_zero_angle_is_roi_align(pytorch_kernels):
    """Unrotated, the op is RoIAlign of the box with the same centre and
    size."""
    from mmcv.ops import roi_align
    feat = features()
    rois = _rois(True)[:8]
    rois[:, 5] = 0
    # centre -> corners exactly in binary fractions: round to 1/64 pixel
    rois[:, 1:5] = (rois[:, 1:5] * 64).round() / 64
    boxes = torch.cat((rois[:, :1], rois[:, 1:3] - rois[:, 3:5] / 2,
                       rois[:, 1:3] + rois[:, 3:5] / 2), 1)
    for sampling_ratio in (0, 2):
        rotated, _ = _pool(feat, rois, sampling_ratio, True, False)
        plain = roi_align(feat, boxes, OUT_SIZE, SCALE, sampling_ratio, 'avg',
                          True)
        torch.testing.assert_close(rotated, plain, rtol=1e-12, atol=1e-12)


def test_samples_on_the_border_lines(pytorch_kernels):
    """A sample at exactly -1 or at the height / width takes the edge pixel;
    a little further out it counts as 0."""
    from mmcv.ops import roi_align_rotated
    feat, rows, cols, expected = border_probes()
    # a 2-pixel RoI centred on the sample point: its one sample is the centre
    rois = torch.tensor([[0, x, y, 2, 2, 0.5] for y, x in zip(rows, cols)],
                        dtype=torch.float64)
    out = roi_align_rotated(feat, rois, 1, 1.0, 1, False, False).flatten()
    torch.testing.assert_close(out, expected, rtol=0, atol=1e-12)


def test_many_chunks_match_one(pytorch_kernels, monkeypatch):
    """RoIs of mixed sample counts split into many chunks (sorted by count,
    padded) give the same results as one chunk."""
    from sm3det_compat.ops import roi_align as kernel_module
    feat = features()
    rois = _rois(aligned=False)
    one = _pool(feat, rois, 0, False, False)
    monkeypatch.setattr(kernel_module, '_MAX_ELEMENTS', 2000)
    torch.testing.assert_close(
        _pool(feat, rois, 0, False, False), one, rtol=0, atol=1e-14)


def test_empty_rois(pytorch_kernels):
    out, grad = _pool(features(), torch.zeros(0, 6, dtype=torch.float64), 0,
                      True, False)
    assert out.shape == (0, 3) + OUT_SIZE
    assert grad.shape == (2, 3, 7, 9) and not grad.any()


def test_negative_size_is_an_error_when_aligned(pytorch_kernels):
    rois = torch.tensor([[0, 6.0, 4.0, -2.0, 8.0, 0.3]], dtype=torch.float64)
    with pytest.raises(RuntimeError, match='non-negative size'):
        _pool(features(), rois, 0, True, False)


@pytest.mark.parametrize('aligned,clockwise,sampling_ratio', [(True, False, 0),
                                                              (False, True, 2),
                                                              (True, True, 2)])
def test_gradcheck(pytorch_kernels, aligned, clockwise, sampling_ratio):
    from mmcv.ops import RoIAlignRotated
    feat = features((2, 2, 5, 6), seed=3).requires_grad_()
    rois = _rois(aligned, seed=4)[::2]
    rois[:, 1:5] *= 0.6  # the 5 x 6 map spans 12 x 10 pixels
    pool = RoIAlignRotated(OUT_SIZE, SCALE, sampling_ratio, aligned, clockwise)
    assert torch.autograd.gradcheck(
        lambda x: pool(x, rois), (feat, ), eps=1e-6, atol=1e-6)


@pytest.mark.parametrize('dtype,tol', [(torch.float16, 1e-2),
                                       (torch.bfloat16, 6e-2)])
def test_half_precision_close_to_float32(pytorch_kernels, dtype, tol):
    """Low-precision inputs (computed in float32) give the float32 result
    rounded, forward and backward; outputs keep the input dtype."""
    feat = features(dtype=dtype)
    rois = _rois(True).to(dtype)
    low = _pool(feat, rois, 0, True, False)
    high = _pool(feat.float(), rois.float(), 0, True, False)
    assert low[0].dtype == low[1].dtype == dtype
    torch.testing.assert_close((low[0].float(), low[1].float()),
                               high,
                               rtol=tol,
                               atol=tol)


def _realistic(seed=0):
    """4 images x 256 channels x 50 x 50 (stride 4), 512 RoIs of 8-160 px
    at any angle."""
    gen = torch.Generator().manual_seed(seed)
    feat = torch.randn(4, 256, 50, 50, generator=gen)
    center = torch.rand(512, 2, generator=gen) * 210 - 5
    size = torch.rand(512, 2, generator=gen) * 152 + 8
    theta = (torch.rand(512, 1, generator=gen) - 0.5) * 2 * math.pi
    batch = torch.randint(0, 4, (512, 1), generator=gen).float()
    rois = torch.cat((batch, center, size, theta), 1)
    grad = torch.randn(512, 256, 7, 7, generator=gen)
    return feat, rois, grad


_COMPILED_SCRIPT = '''
from mmcv.ops import roi_align_rotated
for name, (sampling_ratio, aligned, clockwise) in inputs['cases'].items():
    feat = inputs['feat'].clone().requires_grad_()
    out = roi_align_rotated(feat, inputs['rois'], inputs['out_size'],
                            inputs['scale'], sampling_ratio, aligned,
                            clockwise)
    out.backward(inputs['grad'])
    outputs[name] = (out.detach(), feat.grad)
'''


def _parity(compiled_mmcv, feat, rois, grad, out_size, scale, cases, tol):
    from mmcv.ops import roi_align_rotated
    ref = compiled_mmcv(
        _COMPILED_SCRIPT,
        feat=feat,
        rois=rois,
        grad=grad,
        out_size=out_size,
        scale=scale,
        cases=cases)
    for name, (sampling_ratio, aligned, clockwise) in cases.items():
        inp = feat.clone().requires_grad_()
        out = roi_align_rotated(inp, rois, out_size, scale, sampling_ratio,
                                aligned, clockwise)
        out.backward(grad)
        torch.testing.assert_close(
            out, ref[name][0], rtol=tol, atol=tol, msg=f'{name} forward')
        torch.testing.assert_close(
            inp.grad, ref[name][1], rtol=tol, atol=tol, msg=f'{name} grad')


def test_parity_with_compiled_realistic(pytorch_kernels, compiled_mmcv):
    """Forward and input gradient within 1e-5 of compiled mmcv, float32,
    at detector size, adaptive and fixed sampling."""
    feat, rois, grad = _realistic()
    cases = {f'sr{sr}': (sr, True, False) for sr in (0, 2)}
    _parity(compiled_mmcv, feat, rois, grad, (7, 7), 0.25, cases, 1e-5)


def test_parity_with_compiled_edge_cases(pytorch_kernels, compiled_mmcv):
    """Every mode on the small RoI set with its edge cases, float64."""
    rois = _rois(aligned=False)
    grad = features((len(rois), 3) + OUT_SIZE, seed=2)
    cases = {
        f'aligned{aligned}-clockwise{clockwise}-sr{sr}':
        (sr, aligned, clockwise)
        for aligned in (True, False)
        for clockwise in (False, True)
        for sr in (0, 2)
    }
    # the negative-size RoI (last) is an error with aligned: not in this set
    _parity(compiled_mmcv, features(), rois[:-1], grad[:-1], OUT_SIZE, SCALE,
            cases, 1e-12)
