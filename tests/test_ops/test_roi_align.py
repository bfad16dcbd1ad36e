"""The PyTorch roi_align kernels, through mmcv's own ``roi_align`` wrapper.

References: a per-sample Python loop written from the semantics of mmcv's
CPU kernel (bilinear rule, sample grid, max/avg pooling and their gradients),
float64 ``gradcheck``, float32 for half-precision inputs, and mmcv's compiled
kernels (when their wheel is cached) at a realistic size and on edge cases.
"""

import pytest
import torch

from roi_reference import border_probes, corners, features, grid_size

OUT_SIZE = (3, 4)
SCALE = 0.5  # image pixels -> feature pixels; the 7 x 9 map spans 14 x 18


def _rois(aligned, seed=0):
    """(N, 5) float64 RoIs on a 2-image batch: random ones partly outside the
    map, then zero-size, tiny, fully outside and covering-the-map ones, and
    without ``aligned`` an inverted one (its size is raised to 1 pixel)."""
    gen = torch.Generator().manual_seed(seed)
    xy = torch.rand(8, 2, generator=gen, dtype=torch.float64) * 24 - 4
    wh = torch.rand(8, 2, generator=gen, dtype=torch.float64) * 14
    special = [[3.0, 3.0, 3.0, 3.0], [5.0, 5.0, 5.2, 5.1],
               [-12.0, -10.0, -5.0, -4.0], [-3.0, -2.0, 25.0, 19.0]]
    if not aligned:
        special.append([9.0, 8.0, 6.0, 3.0])
    boxes = torch.cat((torch.cat(
        (xy, xy + wh), 1), torch.tensor(special, dtype=torch.float64)))
    batch = torch.arange(len(boxes), dtype=torch.float64) % 2
    return torch.cat((batch[:, None], boxes), 1)


def _reference(feat, rois, sampling_ratio, pool_mode, aligned, grad_out):
    """Per-sample loop, channels as vectors: output, argmax_y, argmax_x and
    the input gradient for ``grad_out``."""
    _, _, height, width = feat.shape
    pooled_h, pooled_w = OUT_SIZE
    out = feat.new_zeros(grad_out.shape)
    arg_y, arg_x = out.clone(), out.clone()
    grad_in = torch.zeros_like(feat)
    for n, (b, *box) in enumerate(rois.tolist()):
        b = int(b)
        offset = 0.5 if aligned else 0.0
        x1, y1, x2, y2 = (v * SCALE - offset for v in box)
        roi_w, roi_h = x2 - x1, y2 - y1
        if not aligned:
            roi_w, roi_h = max(roi_w, 1.0), max(roi_h, 1.0)
        bin_h, bin_w = roi_h / pooled_h, roi_w / pooled_w
        grid_h = grid_size(roi_h, pooled_h, sampling_ratio)
        grid_w = grid_size(roi_w, pooled_w, sampling_ratio)
        count = max(grid_h * grid_w, 1)
        for ph in range(pooled_h):
            for pw in range(pooled_w):
                total = feat.new_zeros(feat.size(1))
                best = torch.full_like(total, -10000.0)
                best_y, best_x = torch.full_like(total, -1.0), \
                    torch.full_like(total, -1.0)
                g = grad_out[n, :, ph, pw]
                for iy in range(grid_h):
                    y = y1 + ph * bin_h + (iy + 0.5) * bin_h / grid_h
                    for ix in range(grid_w):
                        x = x1 + pw * bin_w + (ix + 0.5) * bin_w / grid_w
                        value = feat.new_zeros(feat.size(1))
                        for r, c, w in corners(height, width, y, x):
                            value += w * feat[b, :, r, c]
                            if pool_mode == 'avg':
                                grad_in[b, :, r, c] += g * w / count
                        larger = value > best
                        best = torch.where(larger, value, best)
                        best_y[larger], best_x[larger] = y, x
                        total += value
                if pool_mode == 'avg':
                    out[n, :, ph, pw] = total / count
                    continue
                out[n, :, ph, pw] = best
                arg_y[n, :, ph, pw], arg_x[n, :, ph, pw] = best_y, best_x
                for ch in range(feat.size(1)):
                    if best_y[ch] == -1:
                        continue
                    for r, c, w in corners(height, width, best_y[ch].item(),
                                           best_x[ch].item()):
                        grad_in[b, ch, r, c] += g[ch] * w
    return out, arg_y, arg_x, grad_in


def _kernel_forward(kernels, feat, rois, sampling_ratio, pool_mode, aligned):
    """The forward kernel called directly: output, argmax_y, argmax_x."""
    shape = (len(rois), feat.size(1)) + OUT_SIZE
    out = feat.new_zeros(shape)
    arg_y, arg_x = (
        feat.new_zeros(shape if pool_mode == 'max' else 0) for _ in range(2))
    kernels.roi_align_forward(
        feat,
        rois,
        out,
        arg_y,
        arg_x,
        aligned_height=OUT_SIZE[0],
        aligned_width=OUT_SIZE[1],
        spatial_scale=SCALE,
        sampling_ratio=sampling_ratio,
        pool_mode=0 if pool_mode == 'max' else 1,
        aligned=aligned)
    return out, arg_y, arg_x


@pytest.mark.parametrize('pool_mode', ['avg', 'max'])
@pytest.mark.parametrize('aligned', [True, False])
@pytest.mark.parametrize('sampling_ratio', [0, 2])
def test_matches_reference_loop(pytorch_kernels, pool_mode, aligned,
                                sampling_ratio):
    """Output, argmax and input gradient, float64, against the loop."""
    from mmcv.ops import roi_align
    feat = features()
    rois = _rois(aligned)
    grad_out = features((len(rois), feat.size(1)) + OUT_SIZE, seed=2)
    ref, ref_y, ref_x, ref_grad = _reference(feat, rois, sampling_ratio,
                                             pool_mode, aligned, grad_out)
    feat.requires_grad_()
    out = roi_align(feat, rois, OUT_SIZE, SCALE, sampling_ratio, pool_mode,
                    aligned)
    out.backward(grad_out)
    torch.testing.assert_close(out, ref, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(feat.grad, ref_grad, rtol=1e-12, atol=1e-12)
    if pool_mode == 'max':
        _, arg_y, arg_x = _kernel_forward(pytorch_kernels, feat.detach(), rois,
                                          sampling_ratio, pool_mode, aligned)
        torch.testing.assert_close(arg_y, ref_y, rtol=0, atol=1e-12)
        torch.testing.assert_close(arg_x, ref_x, rtol=0, atol=1e-12)


def test_max_pool_edge_rules(pytorch_kernels):
    """A bin without samples gives -10000 at (-1, -1); samples outside the
    map count as 0, so over negative features the first of them wins."""
    feat = -torch.ones(1, 1, 4, 4, dtype=torch.float64)
    point = torch.tensor([[0, 1.0, 1.0, 1.0, 1.0]], dtype=torch.float64)
    out, arg_y, arg_x = _kernel_forward(pytorch_kernels, feat, point, 0, 'max',
                                        True)
    assert (out == -10000).all()
    assert (arg_y == -1).all() and (arg_x == -1).all()
    # x from -3.5 (left of the map) in bins 1 wide: samples at -3.25, -2.75
    left = torch.tensor([[0, -6.0, 1.0, 2.0, 3.0]], dtype=torch.float64)
    out, arg_y, arg_x = _kernel_forward(pytorch_kernels, feat, left, 2, 'max',
                                        True)
    assert out[0, 0, 0, 0] == 0
    assert arg_x[0, 0, 0, 0] == -3.25 and arg_y[0, 0, 0, 0] == 1 / 12
    # the last bins' samples are in the map: none above the initial -10000
    out, arg_y, _ = _kernel_forward(pytorch_kernels, feat * 20000, left, 2,
                                    'max', True)
    assert (out[0, 0, :, 3] == -10000).all()
    assert (arg_y[0, 0, :, 3] == -1).all()


@pytest.mark.parametrize('pool_mode', ['avg', 'max'])
def test_samples_on_the_border_lines(pytorch_kernels, pool_mode):
    """A sample at exactly -1 or at the height / width takes the edge pixel;
    a little further out it counts as 0."""
    from mmcv.ops import roi_align
    feat, rows, cols, expected = border_probes()
    # a 2-pixel RoI around the sample point: its one sample is the centre
    rois = torch.tensor([[0, x - 1, y - 1, x + 1, y + 1]
                         for y, x in zip(rows, cols)],
                        dtype=torch.float64)
    out = roi_align(feat, rois, 1, 1.0, 1, pool_mode, False).flatten()
    torch.testing.assert_close(out, expected, rtol=0, atol=1e-12)


def test_many_chunks_match_one(pytorch_kernels, monkeypatch):
    """RoIs of mixed sample counts split into many chunks (sorted by count,
    padded) give the same results as one chunk."""
    from mmcv.ops import roi_align

    from sm3det_compat.ops import roi_align as kernel_module
    feat = features()
    rois = _rois(aligned=False)
    results = []
    for limit in (kernel_module._MAX_ELEMENTS, 2000):
        monkeypatch.setattr(kernel_module, '_MAX_ELEMENTS', limit)
        for pool_mode in ('avg', 'max'):
            inp = feat.clone().requires_grad_()
            out = roi_align(inp, rois, OUT_SIZE, SCALE, 0, pool_mode, False)
            out.backward(torch.ones_like(out))
            results.append((out, inp.grad))
    torch.testing.assert_close(results[:2], results[2:], rtol=0, atol=1e-14)


def test_empty_rois(pytorch_kernels):
    from mmcv.ops import roi_align
    feat = features().requires_grad_()
    for pool_mode in ('avg', 'max'):
        out = roi_align(feat, feat.new_zeros(0, 5), OUT_SIZE, SCALE, 0,
                        pool_mode, True)
        assert out.shape == (0, feat.size(1)) + OUT_SIZE
        out.sum().backward()
        assert feat.grad.shape == feat.shape and not feat.grad.any()


def test_negative_size_is_an_error_when_aligned(pytorch_kernels):
    from mmcv.ops import roi_align
    rois = torch.tensor([[0, 6.0, 4.0, 2.0, 8.0]], dtype=torch.float64)
    with pytest.raises(RuntimeError, match='non-negative size'):
        roi_align(features(), rois, OUT_SIZE, SCALE, 0, 'avg', True)


@pytest.mark.parametrize('pool_mode,aligned,sampling_ratio',
                         [('avg', True, 0), ('avg', False, 2),
                          ('max', True, 2), ('max', False, 0)])
def test_gradcheck(pytorch_kernels, pool_mode, aligned, sampling_ratio):
    from mmcv.ops import roi_align
    feat = features((2, 2, 5, 6), seed=3).requires_grad_()
    rois = _rois(aligned, seed=4)[::2]
    rois[:, 1:] *= 0.6  # the 5 x 6 map spans 12 x 10 pixels

    def pool(x):
        return roi_align(x, rois, OUT_SIZE, SCALE, sampling_ratio, pool_mode,
                         aligned)

    assert torch.autograd.gradcheck(pool, (feat, ), eps=1e-6, atol=1e-6)


@pytest.mark.parametrize('dtype,tol', [(torch.float16, 1e-2),
                                       (torch.bfloat16, 6e-2)])
@pytest.mark.parametrize('pool_mode', ['avg', 'max'])
def test_half_precision_close_to_float32(pytorch_kernels, dtype, tol,
                                         pool_mode):
    """Low-precision inputs (computed in float32) give the float32 result
    rounded, forward and backward; outputs keep the input dtype."""
    from mmcv.ops import roi_align
    feat = features(dtype=dtype)
    rois = _rois(True).to(dtype)
    results = []
    for dt in (dtype, torch.float32):
        inp = feat.to(dt).detach().requires_grad_()
        out = roi_align(inp, rois.to(dt), OUT_SIZE, SCALE, 2, pool_mode, True)
        out.backward(torch.ones_like(out))
        assert out.dtype == inp.grad.dtype == dt
        results.append((out.float(), inp.grad.float()))
    torch.testing.assert_close(results[0], results[1], rtol=tol, atol=tol)


def _realistic(seed=0):
    """4 images x 256 channels x 50 x 50 (stride 4), 512 RoIs of 8-160 px."""
    gen = torch.Generator().manual_seed(seed)
    feat = torch.randn(4, 256, 50, 50, generator=gen)
    xy = torch.rand(512, 2, generator=gen) * 190 - 10
    wh = torch.rand(512, 2, generator=gen) * 152 + 8
    batch = torch.randint(0, 4, (512, 1), generator=gen).float()
    rois = torch.cat((batch, xy, xy + wh), 1)
    grad = torch.randn(512, 256, 7, 7, generator=gen)
    return feat, rois, grad


_COMPILED_SCRIPT = '''
from mmcv.ops import roi_align
for name, (sampling_ratio, pool_mode, aligned) in inputs['cases'].items():
    feat = inputs['feat'].clone().requires_grad_()
    out = roi_align(feat, inputs['rois'], inputs['out_size'],
                    inputs['scale'], sampling_ratio, pool_mode, aligned)
    out.backward(inputs['grad'])
    outputs[name] = (out.detach(), feat.grad)
'''


def _parity(compiled_mmcv, feat, rois, grad, out_size, scale, cases, tol):
    from mmcv.ops import roi_align
    ref = compiled_mmcv(
        _COMPILED_SCRIPT,
        feat=feat,
        rois=rois,
        grad=grad,
        out_size=out_size,
        scale=scale,
        cases=cases)
    for name, (sampling_ratio, pool_mode, aligned) in cases.items():
        inp = feat.clone().requires_grad_()
        out = roi_align(inp, rois, out_size, scale, sampling_ratio, pool_mode,
                        aligned)
        out.backward(grad)
        torch.testing.assert_close(
            out, ref[name][0], rtol=tol, atol=tol, msg=f'{name} forward')
        torch.testing.assert_close(
            inp.grad, ref[name][1], rtol=tol, atol=tol, msg=f'{name} grad')


def test_parity_with_compiled_realistic(pytorch_kernels, compiled_mmcv):
    """Forward and input gradient within 1e-5 of compiled mmcv, float32,
    at detector size, adaptive and fixed sampling."""
    feat, rois, grad = _realistic()
    cases = {f'sr{sr}': (sr, 'avg', True) for sr in (0, 2)}
    _parity(compiled_mmcv, feat, rois, grad, (7, 7), 0.25, cases, 1e-5)


def test_parity_with_compiled_edge_cases(pytorch_kernels, compiled_mmcv):
    """Every mode on the small RoI set with its edge cases, float64."""
    rois = _rois(aligned=False)
    grad = features((len(rois), 3) + OUT_SIZE, seed=2)
    cases = {
        f'{pool_mode}-aligned{aligned}-sr{sr}': (sr, pool_mode, aligned)
        for pool_mode in ('avg', 'max')
        for aligned in (True, False)
        for sr in (0, 2)
    }
    # the inverted RoI (last) is an error with aligned: not in this set
    _parity(compiled_mmcv, features(), rois[:-1], grad[:-1], OUT_SIZE, SCALE,
            cases, 1e-12)
