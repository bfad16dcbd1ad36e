"""PyTorch kernels for mmcv's ``sigmoid_focal_loss``.

mmcv's ``SigmoidFocalLossFunction`` (reached through mmdet's ``FocalLoss``
on CUDA) calls these with the arguments it passes to the compiled
``mmcv._ext``. Shapes: ``input`` (N, num_classes) logits; ``target`` (N,)
int64 class index per row, ``num_classes`` meaning background (no positive
class); ``weight`` (num_classes,) or empty for none; ``output`` and
``grad_input`` (N, num_classes), written in place.

With ``p = sigmoid(input)``, ``t`` a row's target and ``c`` the column, the
elementwise loss of mmcv's CUDA kernel is::

    c == t:  -alpha * (1 - p)**gamma * log(max(p, FLT_MIN))
    c != t:  -(1 - alpha) * p**gamma * log(max(1 - p, FLT_MIN))

and its derivative w.r.t. the logit::

    c == t:  -alpha * (1 - p)**gamma * (1 - p - gamma * p * log(max(p, ..)))
    c != t:  -(1 - alpha) * p**gamma * (gamma * (1 - p) * log(max(1 - p, ..))
                                        - p)

both multiplied by ``weight[t]`` (the weight of the row's target class, not
of the column) when ``weight`` is not empty. mmcv reads past the end of
``weight`` for background rows; here they keep factor 1. Computation is in
float32 (float64 stays float64), written back in the output's dtype.
"""
import torch

__all__ = ['sigmoid_focal_loss_forward', 'sigmoid_focal_loss_backward']

#: the kernel's FLT_MIN, the floor of p and 1 - p under the log
_FLT_MIN = torch.finfo(torch.float32).tiny


def _focal_terms(input, target, weight, alpha):
    """p = sigmoid(input), the mask of positives (column == target) and the
    factor -alpha (positives) or -(1 - alpha), times weight[target]."""
    dtype = torch.promote_types(input.dtype, torch.float32)
    p = 1 / (1 + torch.exp(-input.to(dtype)))  # the kernel's formula
    positive = target[:, None] == torch.arange(
        input.shape[1], device=input.device)
    factor = torch.where(positive, p.new_tensor(-alpha),
                         p.new_tensor(alpha - 1))  # p's dtype, not float32
    if weight.numel() == 0:
        return p, positive, factor
    # background rows (target == num_classes) have no class weight
    row_weight = torch.cat((weight.to(dtype), weight.new_ones(1, dtype=dtype)))
    return p, positive, factor * row_weight[target][:, None]


def sigmoid_focal_loss_forward(input, target, weight, output, gamma, alpha):
    """Writes the elementwise sigmoid focal loss into ``output``."""
    if target.numel() and int(target.max()) > input.shape[1]:
        raise ValueError(
            'target label should be smaller or equal than num classes')
    p, positive, factor = _focal_terms(input, target, weight, alpha)
    loss_pos = (1 - p).pow(gamma) * p.clamp(min=_FLT_MIN).log()
    loss_neg = p.pow(gamma) * (1 - p).clamp(min=_FLT_MIN).log()
    output.copy_(factor * torch.where(positive, loss_pos, loss_neg))


def sigmoid_focal_loss_backward(input, target, weight, grad_input, gamma,
                                alpha):
    """Writes the derivative of the elementwise loss w.r.t. ``input`` into
    ``grad_input``."""
    p, positive, factor = _focal_terms(input, target, weight, alpha)
    log_p = p.clamp(min=_FLT_MIN).log()
    log_q = (1 - p).clamp(min=_FLT_MIN).log()
    grad_pos = (1 - p).pow(gamma) * (1 - p - gamma * p * log_p)
    grad_neg = p.pow(gamma) * (gamma * (1 - p) * log_q - p)
    grad_input.copy_(factor * torch.where(positive, grad_pos, grad_neg))
