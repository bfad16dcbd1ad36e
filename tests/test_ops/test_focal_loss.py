"""The PyTorch sigmoid_focal_loss kernels, through mmcv's own wrapper.

mmcv's compiled focal loss has only a CUDA kernel, so the references are
independent: mmdet's pure-PyTorch ``py_sigmoid_focal_loss`` (value and
autograd gradient), the kernel's FLT_MIN clamp on saturated logits, and
float64 ``gradcheck``.
"""
import math

import pytest
import torch
import torch.nn.functional as F

NUM_CLASSES = 5


def _inputs(n=40, scale=3.0, seed=0):
    """float64 logits (n, NUM_CLASSES), targets including background."""
    gen = torch.Generator().manual_seed(seed)
    logits = torch.randn(
        n, NUM_CLASSES, generator=gen, dtype=torch.float64) * scale
    target = torch.randint(0, NUM_CLASSES + 1, (n, ), generator=gen)
    target[:2] = torch.tensor([0, NUM_CLASSES])  # a positive, a background
    return logits, target


def _class_weight():
    return torch.tensor([0.5, 1.0, 2.0, 0.25, 3.0], dtype=torch.float64)


def _mmdet_reference(logits, target, gamma, alpha, weight=None):
    """mmdet's py_sigmoid_focal_loss per element; ``weight`` scales each row
    by its target's class weight (background rows unweighted)."""
    from mmdet.models.losses.focal_loss import py_sigmoid_focal_loss
    one_hot = F.one_hot(target, NUM_CLASSES + 1)[:, :NUM_CLASSES]
    loss = py_sigmoid_focal_loss(logits, one_hot.to(logits.dtype), None, gamma,
                                 alpha, 'none')
    if weight is None:
        return loss
    row_weight = torch.cat((weight, weight.new_ones(1)))[target]
    return loss * row_weight[:, None]


@pytest.mark.parametrize('gamma,alpha', [(2.0, 0.25), (1.5, 0.5), (0.0, 0.7)])
@pytest.mark.parametrize('weighted', [False, True])
def test_matches_mmdet_python_focal_loss(pytorch_kernels, gamma, alpha,
                                         weighted):
    """Loss and its gradient (vs autograd of mmdet's formula)."""
    from mmcv.ops import sigmoid_focal_loss
    logits, target = _inputs()
    weight = _class_weight() if weighted else None
    ours_in = logits.clone().requires_grad_()
    ref_in = logits.clone().requires_grad_()
    loss = sigmoid_focal_loss(ours_in, target, gamma, alpha, weight, 'none')
    ref = _mmdet_reference(ref_in, target, gamma, alpha, weight)
    torch.testing.assert_close(loss, ref, rtol=1e-10, atol=1e-12)
    grad_out = torch.rand_like(ref)
    loss.backward(grad_out)
    ref.backward(grad_out)
    torch.testing.assert_close(
        ours_in.grad, ref_in.grad, rtol=1e-10, atol=1e-12)


def test_weight_is_taken_at_the_rows_target(pytorch_kernels):
    """mmcv scales a whole row by weight[target] (not column by column);
    background rows are left unweighted here (mmcv reads past the end)."""
    logits, target = _inputs()
    weight = _class_weight()
    plain = torch.empty_like(logits)
    weighted = torch.empty_like(logits)
    pytorch_kernels.sigmoid_focal_loss_forward(
        logits, target, logits.new_empty(0), plain, gamma=2.0, alpha=0.25)
    pytorch_kernels.sigmoid_focal_loss_forward(
        logits, target, weight, weighted, gamma=2.0, alpha=0.25)
    factor = torch.cat((weight, weight.new_ones(1)))[target]
    torch.testing.assert_close(weighted, plain * factor[:, None])
    grad_plain = torch.full_like(logits, 9.0)  # overwritten, not added to
    grad_weighted = torch.empty_like(logits)
    pytorch_kernels.sigmoid_focal_loss_backward(
        logits, target, logits.new_empty(0), grad_plain, gamma=2.0, alpha=0.25)
    pytorch_kernels.sigmoid_focal_loss_backward(
        logits, target, weight, grad_weighted, gamma=2.0, alpha=0.25)
    torch.testing.assert_close(grad_weighted, grad_plain * factor[:, None])


def test_saturated_logits_clamp_log_at_flt_min(pytorch_kernels):
    """The kernel clamps p and 1 - p at FLT_MIN before the log, so a
    hopeless logit costs alpha * -log(FLT_MIN), about 87.3 * alpha."""
    from mmcv.ops import sigmoid_focal_loss
    logits = torch.tensor([[-200.0, 200.0]], dtype=torch.float64)
    target = torch.tensor([0])
    loss = sigmoid_focal_loss(logits, target, 2.0, 0.25, None, 'none')
    log_flt_min = math.log(torch.finfo(torch.float32).tiny)
    expected = torch.tensor([[-0.25 * log_flt_min, -0.75 * log_flt_min]],
                            dtype=torch.float64)
    torch.testing.assert_close(loss, expected)


@pytest.mark.parametrize('reduction', ['none', 'mean', 'sum'])
@pytest.mark.parametrize('weighted', [False, True])
def test_gradcheck(pytorch_kernels, reduction, weighted):
    from mmcv.ops import sigmoid_focal_loss
    logits, target = _inputs(n=12)
    weight = _class_weight() if weighted else None
    logits.requires_grad_()
    assert torch.autograd.gradcheck(
        lambda x: sigmoid_focal_loss(x, target, 2.0, 0.25, weight, reduction),
        (logits, ))


@pytest.mark.parametrize('dtype', [torch.float16, torch.bfloat16])
def test_half_precision(pytorch_kernels, dtype):
    """Half logits keep their dtype; values match float32 on the same
    (rounded) logits to the output's precision."""
    from mmcv.ops import sigmoid_focal_loss
    logits, target = _inputs()
    weight = _class_weight()
    half = logits.to(dtype).requires_grad_()
    full = half.detach().float().requires_grad_()
    loss = sigmoid_focal_loss(half, target, 2.0, 0.25, weight.to(dtype),
                              'none')
    ref = sigmoid_focal_loss(full, target, 2.0, 0.25, weight.float(), 'none')
    loss.sum().backward()
    ref.sum().backward()
    assert loss.dtype == half.grad.dtype == dtype
    torch.testing.assert_close(loss.float(), ref, rtol=1e-2, atol=1e-2)
    torch.testing.assert_close(
        half.grad.float(), full.grad, rtol=1e-2, atol=1e-2)


def test_target_beyond_background_is_rejected(pytorch_kernels):
    from mmcv.ops import sigmoid_focal_loss
    logits, target = _inputs()
    target[0] = NUM_CLASSES + 1
    with pytest.raises(ValueError, match='num classes'):
        sigmoid_focal_loss(logits, target, 2.0, 0.25, None, 'none')
