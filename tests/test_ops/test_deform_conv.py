"""The PyTorch deform_conv kernels, through mmcv's own ``deform_conv2d``.

Independent references: ``F.conv2d`` (zero and integer offsets), a scalar
per-sample Python implementation of mmcv's bilinear rule (fractional offsets,
samples at and beyond the borders), one-sided differences at integer sample
positions (mmcv's floor convention) and float64 ``gradcheck``. Parity with
mmcv's compiled CPU kernels, including a realistic S2A-Net AlignConv size,
runs when the compiled wheel is cached.
"""
import itertools
import math

import pytest
import torch
import torch.nn.functional as F
from torch.nn.modules.utils import _pair

# (groups, deform_groups, stride, padding, dilation, kernel (kH, kW)):
# asymmetric values catch swapped H / W arguments
CONFIGS = [
    (1, 1, 1, 1, 1, (3, 3)),
    (2, 2, 2, 1, 2, (3, 3)),
    (1, 2, 1, 0, 1, (3, 2)),
    (2, 1, (2, 1), (1, 2), (2, 1), (2, 3)),
]


def _deform_conv(x, offset, weight, config, im2col_step=32):
    from mmcv.ops import deform_conv2d
    groups, deform_groups, stride, padding, dilation, _ = config
    return deform_conv2d(x, offset, weight, stride, padding, dilation, groups,
                         deform_groups, False, im2col_step)


def _inputs(config,
            n=2,
            channels=4,
            out_channels=4,
            size=(6, 7),
            dtype=torch.float64,
            offset_scale=2.0,
            seed=0):
    """Random input, weight and offsets (uniform in +-offset_scale)."""
    groups, deform_groups, stride, padding, dilation, kernel = config
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, channels, *size, generator=gen, dtype=dtype)
    weight = torch.randn(
        out_channels, channels // groups, *kernel, generator=gen, dtype=dtype)
    out_size = _output_size(size, config)
    offset = (torch.rand(
        n,
        deform_groups * 2 * kernel[0] * kernel[1],
        *out_size,
        generator=gen,
        dtype=dtype) * 2 - 1) * offset_scale
    return x, offset, weight


def _output_size(size, config):
    _, _, stride, padding, dilation, kernel = config
    return tuple(
        (s + 2 * p - d * (k - 1) - 1) // st + 1 for s, p, d, k, st in zip(
            size, _pair(padding), _pair(dilation), kernel, _pair(stride)))


def _bilinear(image, y, x):
    """mmcv's ``deformable_im2col_bilinear`` for one sample of a 2D list."""
    height, width = len(image), len(image[0])
    if not (-1 < y < height and -1 < x < width):
        return 0.0
    y0, x0 = math.floor(y), math.floor(x)
    value = 0.0
    for row, wy in ((y0, 1 - (y - y0)), (y0 + 1, y - y0)):
        for col, wx in ((x0, 1 - (x - x0)), (x0 + 1, x - x0)):
            if 0 <= row < height and 0 <= col < width:
                value += wy * wx * image[row][col]
    return value


def _sample_positions(offset, config, n, d, k, ho, wo):
    """(y, x) in input pixels of tap k of output pixel (ho, wo)."""
    _, _, stride, padding, dilation, (kh, kw) = config
    (sh, sw), (ph, pw) = _pair(stride), _pair(padding)
    dh, dw = _pair(dilation)
    i, j = divmod(k, kw)
    channel = (d * kh * kw + k) * 2
    return (ho * sh - ph + i * dh + offset[n][channel][ho][wo],
            wo * sw - pw + j * dw + offset[n][channel + 1][ho][wo])


def _naive_deform_conv(x, offset, weight, config):
    """Per-sample Python sampling, then the grouped weighted sum."""
    groups, deform_groups = config[:2]
    n, channels = x.shape[:2]
    out_channels, _, kh, kw = weight.shape
    out_h, out_w = offset.shape[2:]
    images, offsets = x.tolist(), offset.tolist()
    cols = torch.zeros(n, channels, kh * kw, out_h, out_w, dtype=x.dtype)
    for b, c, k, ho, wo in itertools.product(
            range(n), range(channels), range(kh * kw), range(out_h),
            range(out_w)):
        d = c // (channels // deform_groups)
        y, x_ = _sample_positions(offsets, config, b, d, k, ho, wo)
        cols[b, c, k, ho, wo] = _bilinear(images[b][c], y, x_)
    cols = cols.view(n, groups, -1, out_h, out_w)
    weight = weight.view(groups, out_channels // groups, -1)
    return torch.einsum('gok,bgkhw->bgohw', weight,
                        cols).reshape(n, out_channels, out_h, out_w)


@pytest.mark.parametrize('config', CONFIGS)
def test_zero_offsets_equal_conv2d(pytorch_kernels, config):
    groups, _, stride, padding, dilation, _ = config
    x, offset, weight = _inputs(config, n=4, dtype=torch.float32)
    out = _deform_conv(
        x, torch.zeros_like(offset), weight, config, im2col_step=2)
    ref = F.conv2d(x, weight, None, stride, padding, dilation, groups)
    assert out.shape == ref.shape
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize('config', CONFIGS)
def test_integer_offsets_equal_conv2d_of_shifted_input(pytorch_kernels,
                                                       config):
    """One integer shift (dy, dx) per deformable group: the samples are the
    input pixels shifted, outside the image 0."""
    groups, deform_groups, stride, padding, dilation, kernel = config
    x, offset, weight = _inputs(config)
    shifts = [(1, -2), (-3, 1)][:deform_groups]
    offset = torch.cat([
        torch.tensor(shift, dtype=x.dtype).repeat(kernel[0] * kernel[1])
        for shift in shifts
    ])[None, :, None, None].expand_as(offset).contiguous()
    (ph, pw), margin = _pair(padding), 8
    big = F.pad(x, (margin, ) * 4)
    group_channels = torch.arange(x.shape[1]).chunk(deform_groups)
    shifted = torch.cat([
        big[:, channels, margin - ph + dy:margin + x.shape[2] + ph + dy,
            margin - pw + dx:margin + x.shape[3] + pw + dx]
        for channels, (dy, dx) in zip(group_channels, shifts)
    ], 1)
    ref = F.conv2d(shifted, weight, None, stride, 0, dilation, groups)
    out = _deform_conv(x, offset, weight, config)
    torch.testing.assert_close(out, ref, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize('config', CONFIGS)
def test_fractional_offsets_match_python_reference(pytorch_kernels, config):
    """Random fractional offsets, and samples placed on and around the
    borders: -1 and H (outside), just inside them, and the last row."""
    x, offset, weight = _inputs(config, size=(5, 6), offset_scale=2.5)
    height, width = x.shape[2:]
    edges_y = [
        -1.0, -0.999, -0.5, 0.0, height - 1.0, height - 0.5, height - 0.001,
        float(height), height + 0.3
    ]
    edges_x = [-1.0, -0.25, width - 1.0, width - 0.75, float(width), -1.5]
    deform_groups, (kh, kw) = config[1], config[5]
    positions = itertools.product(
        range(x.shape[0]), range(deform_groups), range(kh * kw),
        range(offset.shape[2]), range(offset.shape[3]))
    edges = itertools.product(edges_y, edges_x)
    for (y, x_), (b, d, k, ho, wo) in zip(edges, positions):
        channel = (d * kh * kw + k) * 2
        offset[b, channel:channel + 2, ho, wo] = 0
        base_y, base_x = _sample_positions(offset.tolist(), config, b, d, k,
                                           ho, wo)
        offset[b, channel, ho, wo] = y - base_y
        offset[b, channel + 1, ho, wo] = x_ - base_x
    out = _deform_conv(x, offset, weight, config, im2col_step=1)
    ref = _naive_deform_conv(x, offset, weight, config)
    torch.testing.assert_close(out, ref, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize('config', CONFIGS)
def test_gradcheck(pytorch_kernels, config):
    """float64 gradients w.r.t. input, offset and weight (offsets random,
    so almost surely off the kinks at integer positions)."""
    x, offset, weight = _inputs(
        config, channels=2, out_channels=2, size=(4, 5))
    inputs = [t.requires_grad_() for t in (x, offset, weight)]
    assert torch.autograd.gradcheck(
        lambda *args: _deform_conv(*args, config, im2col_step=1), inputs)


@pytest.mark.parametrize('config', CONFIGS[:2])
def test_offset_gradient_at_integer_positions_is_one_sided(
        pytorch_kernels, config):
    """At integer sample positions (mmcv's floor convention) the offset
    gradient is the derivative towards +y (+x): the change of the output
    when the y (x) offsets move by +0.5 inside their cell, exactly linear.
    Samples at -1 are outside: mmcv gives them gradient 0; they stay."""
    x, offset, weight = _inputs(config, offset_scale=3.0)
    offset = offset.round().requires_grad_()
    out = _deform_conv(x, offset, weight, config)
    grad_out = torch.randn_like(out)
    out.backward(grad_out)
    deform_groups, (kh, kw) = config[1], config[5]
    offsets = offset.tolist()
    for axis in (0, 1):
        step = torch.zeros_like(offset)
        for b, d, k, ho, wo in itertools.product(
                range(x.shape[0]), range(deform_groups), range(kh * kw),
                range(offset.shape[2]), range(offset.shape[3])):
            position = _sample_positions(offsets, config, b, d, k, ho, wo)
            channel = (d * kh * kw + k) * 2 + axis
            if position[axis] == -1:
                assert offset.grad[b, channel, ho, wo] == 0
            else:
                step[b, channel, ho, wo] = 0.5
        moved = _deform_conv(x, offset.detach() + step, weight, config)
        change = ((moved - out.detach()) * grad_out).sum()
        torch.testing.assert_close(
            change, (offset.grad * step).sum(), rtol=1e-9, atol=1e-9)


def test_im2col_step_chunks_give_the_same_result(pytorch_kernels):
    config = CONFIGS[1]
    results = []
    for step in (1, 2, 4):
        x, offset, weight = _inputs(config, n=4)
        inputs = [t.requires_grad_() for t in (x, offset, weight)]
        out = _deform_conv(*inputs, config, im2col_step=step)
        out.backward(torch.ones_like(out))
        results.append([out] + [t.grad for t in inputs])
    for other in results[1:]:
        for a, b in zip(results[0], other):
            torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)


# outputs are sums of 18 products of N(0, 1) values, about 4 in magnitude
HALF_TOLERANCES = {
    torch.float16: dict(rtol=1e-2, atol=5e-2),
    torch.bfloat16: dict(rtol=2e-2, atol=3e-1),
}


@pytest.mark.parametrize('dtype', [torch.float16, torch.bfloat16])
def test_half_precision(pytorch_kernels, dtype):
    """Half inputs run, keep their dtype, and match float32 on the same
    (rounded) values to the output's precision."""
    config = CONFIGS[1]
    x, offset, weight = (t.to(dtype) for t in _inputs(config))
    inputs = [t.requires_grad_() for t in (x, offset, weight)]
    ref_inputs = [t.detach().float().requires_grad_() for t in inputs]
    out = _deform_conv(*inputs, config)
    ref = _deform_conv(*ref_inputs, config)
    grad_out = torch.randn_like(ref)
    out.backward(grad_out.to(dtype))
    ref.backward(grad_out)
    assert out.dtype == dtype
    tol = HALF_TOLERANCES[dtype]
    for a, b in zip([out] + [t.grad for t in inputs],
                    [ref] + [t.grad for t in ref_inputs]):
        assert a.dtype == dtype
        torch.testing.assert_close(a.float(), b, **tol)


def test_kernels_accumulate_or_overwrite_like_mmcv(pytorch_kernels):
    """Called directly: ``gradInput`` and ``gradWeight`` are added to (the
    latter times ``scale``), ``output`` and ``gradOffset`` overwritten."""
    config = CONFIGS[1]
    groups, deform_groups, stride, padding, dilation, (kh, kw) = config
    x, offset, weight = _inputs(config, n=4)
    inputs = [t.clone().requires_grad_() for t in (x, offset, weight)]
    out = _deform_conv(*inputs, config)
    grad_out = torch.randn_like(out)
    out.backward(grad_out)
    args = dict(
        kW=kw,
        kH=kh,
        dW=stride,
        dH=stride,
        padW=padding,
        padH=padding,
        dilationW=dilation,
        dilationH=dilation,
        group=groups,
        deformable_group=deform_groups,
        im2col_step=2)
    empty = x.new_empty(0)
    output = torch.full_like(out, 7.0)
    pytorch_kernels.deform_conv_forward(x, weight, offset, output, empty,
                                        empty, **args)
    grad_input, grad_offset = torch.ones_like(x), torch.ones_like(offset)
    pytorch_kernels.deform_conv_backward_input(x, offset, grad_out, grad_input,
                                               grad_offset, weight, empty,
                                               **args)
    grad_weight = torch.ones_like(weight)
    pytorch_kernels.deform_conv_backward_parameters(
        x, offset, grad_out, grad_weight, empty, empty, scale=0.5, **args)
    torch.testing.assert_close(output, out.detach())
    torch.testing.assert_close(grad_input, 1 + inputs[0].grad)
    torch.testing.assert_close(grad_offset, inputs[1].grad)
    torch.testing.assert_close(grad_weight, 1 + 0.5 * inputs[2].grad)


_COMPILED_SCRIPT = '''
from mmcv.ops import deform_conv2d
outputs['results'] = []
for tensors, args, grad_out in inputs['cases']:
    x, offset, weight = (t.requires_grad_() for t in tensors)
    out = deform_conv2d(x, offset, weight, *args)
    out.backward(grad_out)
    outputs['results'].append(
        dict(out=out.detach(), grad_input=x.grad, grad_offset=offset.grad,
             grad_weight=weight.grad))
'''


def _run_both(compiled_mmcv, cases):
    """Forward and backward of the PyTorch kernels and of the compiled mmcv
    ops (one subprocess) for each ``(tensors, config)``: pairs of dicts of
    out, grad_input, grad_offset, grad_weight."""
    ours, compiled_cases = [], []
    for tensors, config in cases:
        groups, deform_groups, stride, padding, dilation, _ = config
        inputs = [t.detach().clone().requires_grad_() for t in tensors]
        out = _deform_conv(*inputs, config)
        grad_out = torch.randn_like(out)
        out.backward(grad_out)
        ours.append(
            dict(
                out=out.detach(),
                grad_input=inputs[0].grad,
                grad_offset=inputs[1].grad,
                grad_weight=inputs[2].grad))
        args = (stride, padding, dilation, groups, deform_groups, False, 32)
        compiled_cases.append((tensors, args, grad_out))
    theirs = compiled_mmcv(_COMPILED_SCRIPT, cases=compiled_cases)['results']
    return zip(ours, theirs)


def test_parity_with_compiled_mmcv_small(compiled_mmcv, pytorch_kernels):
    """Every config of CONFIGS, float64, with samples on the borders: all
    outputs equal to rounding, so the boundary rules are mmcv's."""
    cases = []
    for config in CONFIGS:
        x, offset, weight = _inputs(config, offset_scale=3.0)
        # integer and half-integer offsets put samples exactly on -1, H, ...
        offset[:, ::3] = (offset[:, ::3] * 2).round() / 2
        cases.append(((x, offset, weight), config))
    results = _run_both(compiled_mmcv, cases)
    for config, (ours, theirs) in zip(CONFIGS, results):
        for name, value in ours.items():
            message = f'{name}, config {config}'
            torch.testing.assert_close(
                value, theirs[name], rtol=1e-10, atol=1e-10, msg=message)


def test_parity_with_compiled_mmcv_alignconv_size(compiled_mmcv,
                                                  pytorch_kernels):
    """S2A-Net AlignConv size: 2 x 256 channels x 64 x 64, 3 x 3 kernel,
    one deformable group, float32. Tolerance: 1e-5 of each tensor's
    largest magnitude (float32 sums of 2304 products in another order;
    measured: 2e-7 to 1.5e-6)."""
    config = (1, 1, 1, 1, 1, (3, 3))
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(2, 256, 64, 64, generator=gen)
    weight = torch.randn(256, 256, 3, 3, generator=gen) * 0.02
    offset = torch.randn(2, 18, 64, 64, generator=gen) * 2
    [(ours, theirs)] = _run_both(compiled_mmcv,
                                 [((x, offset, weight), config)])
    for name, value in ours.items():
        scale = theirs[name].abs().max()
        torch.testing.assert_close(
            value, theirs[name], rtol=0, atol=1e-5 * scale, msg=name)
