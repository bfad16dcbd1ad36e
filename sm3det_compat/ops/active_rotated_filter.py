"""PyTorch kernels for mmcv's ``active_rotated_filter`` (ORConv2d's
oriented filters, in the S2A-Net heads).

``input`` (O, I, A, kH, kW) holds O x I filters of A orientations;
``indices`` (A, kH, kW, R), 1-based, says for each of R rotations where each
of the A * kH * kW entries of a filter moves. ``output``
(O * R, I * A, kH, kW), viewed as (O, R, I, A * kH * kW), holds each filter
once per rotation: ``output[o, r, i, indices[e, r] - 1] = input[o, i, e]``.
Within a rotation ``indices`` is a permutation, so the forward is a scatter
and its adjoint, the backward, a gather summed over the rotations:
``grad_in[o, i, e] = sum_r grad_out[o, r, i, indices[e, r] - 1]``.
"""
import torch

__all__ = ['active_rotated_filter_forward', 'active_rotated_filter_backward']


def _targets(indices, shape):
    """0-based destinations (1, R, 1, E) broadcast to ``shape``
    (O, R, I, E)."""
    num_rotations = indices.shape[-1]
    dest = indices.reshape(-1, num_rotations).t().long() - 1
    return dest[None, :, None].expand(shape)


def active_rotated_filter_forward(input, indices, output):
    """Writes every filter's R rotated copies into ``output``."""
    num_out, num_in = input.shape[:2]
    filters = input.reshape(num_out, 1, num_in, -1)
    shape = (num_out, indices.shape[-1], num_in, filters.shape[-1])
    rotated = output.view(shape)
    rotated.scatter_(3, _targets(indices, shape), filters.expand(shape))


def active_rotated_filter_backward(grad_out, indices, grad_in):
    """Writes the gradient w.r.t. the filters into ``grad_in``."""
    num_rotations = indices.shape[-1]
    num_out = grad_out.shape[0] // num_rotations
    num_in = grad_in.shape[1]
    shape = (num_out, num_rotations, num_in, grad_in[0, 0].numel())
    gathered = torch.gather(
        grad_out.reshape(shape), 3, _targets(indices, shape))
    grad_in.copy_(gathered.sum(1).view_as(grad_in))
