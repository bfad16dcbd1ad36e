"""The PyTorch active_rotated_filter kernels (ORConv2d in the S2A-Net heads),
through mmcv's wrapper, against the C++ kernel's loops written in Python,
gradcheck and the compiled kernel, with the indices ORConv2d really uses."""
import pytest
import torch
from mmcv.ops import active_rotated_filter
from mmrotate.models.utils.orconv import ORConv2d


def orconv_indices(orientations=8, rotations=8, kernel=3):
    return ORConv2d(4, 4, kernel, arf_config=(orientations, rotations)).indices


def reference_forward(weight, indices):
    """The C++ loops: output[o, r, i, indices[e, r] - 1] = weight[o, i, e]."""
    num_out, num_in = weight.shape[:2]
    flat_idx = indices.reshape(-1, indices.shape[-1])
    entries, rotations = flat_idx.shape
    out = weight.new_zeros(num_out, rotations, num_in, entries)
    flat_w = weight.reshape(num_out, num_in, entries)
    for o in range(num_out):
        for i in range(num_in):
            for e in range(entries):
                for r in range(rotations):
                    out[o, r, i, int(flat_idx[e, r]) - 1] = flat_w[o, i, e]
    return out.reshape(num_out * rotations, num_in * weight.shape[2],
                       *weight.shape[3:])


@pytest.mark.parametrize('orientations,rotations,kernel',
                         [(8, 8, 3), (4, 4, 1), (8, 4, 3)])
def test_matches_the_kernel_loops(pytorch_kernels, orientations, rotations,
                                  kernel):
    indices = orconv_indices(orientations, rotations, kernel)
    weight = torch.randn(3, 2, orientations, kernel, kernel)
    assert torch.equal(
        active_rotated_filter(weight, indices),
        reference_forward(weight, indices))


def test_gradcheck(pytorch_kernels):
    indices = orconv_indices(8, 8, 3)
    weight = torch.randn(
        2, 2, 8, 3, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(
        lambda w: active_rotated_filter(w, indices), (weight, ))


def test_orconv_runs_forward_and_backward(pytorch_kernels):
    conv = ORConv2d(2, 4, 3, padding=1, arf_config=(8, 8))
    x = torch.randn(1, 16, 8, 8, requires_grad=True)
    conv(x).sum().backward()
    assert conv.weight.grad.abs().sum() > 0 and x.grad.shape == x.shape


def test_parity_with_compiled_mmcv(pytorch_kernels, compiled_mmcv):
    indices = orconv_indices(8, 8, 3)
    weight = torch.randn(16, 4, 8, 3, 3)
    grad = torch.randn(16 * 8, 4 * 8, 3, 3)
    expected = compiled_mmcv(
        '''
        from mmcv.ops import active_rotated_filter
        w = inputs['weight'].clone().requires_grad_()
        out = active_rotated_filter(w, inputs['indices'])
        out.backward(inputs['grad'])
        outputs.update(out=out.detach(), grad=w.grad)
        ''',
        weight=weight,
        indices=indices,
        grad=grad)
    w = weight.clone().requires_grad_()
    out = active_rotated_filter(w, indices)
    out.backward(grad)
    assert torch.equal(out.detach(), expected['out'])
    assert torch.allclose(w.grad, expected['grad'], atol=1e-5)
