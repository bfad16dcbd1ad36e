"""Dispatch of a GridMoE layer: routing units to their experts and back.

The ``(unit, rank)`` slots are stably sorted by expert, so each expert's
slots form one contiguous block; the stacked experts
(:mod:`~sm3det.models.layers.stacked_experts`) compute the blocks and the
results are put back in slot order and gate-mixed (:func:`run_experts`).
No host-device synchronisation on the grouped-GEMM path.

Backend choice (:func:`use_grouped_mm`): one grouped GEMM per linear layer
(``torch.nn.functional.grouped_mm``, no host synchronisation) for bf16 on
CUDA sm90+, one expert at a time elsewhere: on CPU (measured faster:
``grouped_mm`` loops over the experts there too) and on CUDA in other dtypes
and on older GPUs (where ``grouped_mm`` falls back to a host-side loop
itself). The loop is also taken where rows are not 16-byte aligned and under
``torch.jit`` tracing (FLOP counting). A benchmark or test that compares the
two forces one with :func:`forced_expert_backend`.

An exported ONNX graph has no host to read the counts and no grouped GEMM,
so there every expert gathers the units routed to it (a mask, ONNX
``NonZero``), computes them and adds its gated outputs back (``index_add``,
ONNX ``ScatterElements``): :func:`run_experts_gathered`, the same routing,
terms and sums, equal to float rounding.
"""
import contextlib
from typing import Iterator, Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from .stacked_experts import (HAS_GROUPED_MM, ExpertRows, StackedLinear,
                              compute_dtype, stacked_linears)

#: The backends :func:`forced_expert_backend` can force.
EXPERT_BACKENDS = ('grouped_mm', 'loop', 'gather')
# Set only by forced_expert_backend; None: the automatic choice.
_forced_backend: Optional[str] = None


@contextlib.contextmanager
def forced_expert_backend(backend: str) -> Iterator[None]:
    """Within the block, every GridMoE computes its experts with ``backend``
    instead of the automatic choice (for benchmarks and tests).

    ``'grouped_mm'`` (one grouped GEMM per linear layer) still gives way to
    the loop where rows are not 16-byte aligned and under ``torch.jit``
    tracing; ``'loop'`` is one expert at a time; ``'gather'`` each expert
    gathers its units by a mask, as in an ONNX export
    (:func:`run_experts_gathered`).

    Raises:
        ValueError: an unknown backend, or ``'grouped_mm'`` on a torch
            without ``torch.nn.functional.grouped_mm`` (torch < 2.9).
    """
    global _forced_backend
    if backend not in EXPERT_BACKENDS:
        raise ValueError(f'expert backend must be one of {EXPERT_BACKENDS}, '
                         f'got {backend!r}')
    if backend == 'grouped_mm' and not HAS_GROUPED_MM:
        raise ValueError("expert backend 'grouped_mm' needs torch.nn."
                         'functional.grouped_mm (torch >= 2.9)')
    previous, _forced_backend = _forced_backend, backend
    try:
        yield
    finally:
        _forced_backend = previous


class DispatchToSlots(torch.autograd.Function):
    """Copy each unit to its k slots, in expert-sorted slot order.

    ``index_select`` would do the forward, but its backward is a
    scatter-add; since every unit has exactly k slots, the backward here is
    a gather and a sum over k, which parallelises well.
    """

    @staticmethod
    def forward(ctx, units, slot_order, inverse_order, top_k):
        """units ``(U, ...)`` -> ``(U * k, ...)``, slot ``slot_order[i]``
        at row i."""
        ctx.save_for_backward(inverse_order)
        ctx.top_k = top_k
        return units.index_select(0, slot_order // top_k)

    @staticmethod
    def backward(ctx, grad):
        inverse_order, = ctx.saved_tensors
        grad = grad.index_select(0, inverse_order)
        return grad.unflatten(0, (-1, ctx.top_k)).sum(dim=1), None, None, None


class UnsortSlots(torch.autograd.Function):
    """Put expert-sorted slot rows back in (unit, rank) order: a permutation,
    so the backward is the inverse gather instead of a scatter-add."""

    @staticmethod
    def forward(ctx, sorted_rows, slot_order, inverse_order):
        ctx.save_for_backward(slot_order)
        return sorted_rows.index_select(0, inverse_order)

    @staticmethod
    def backward(ctx, grad):
        slot_order, = ctx.saved_tensors
        return grad.index_select(0, slot_order), None, None


def run_experts(
        experts: nn.Module, expert_ids: torch.Tensor, units: torch.Tensor,
        gates: torch.Tensor,
        expert_index: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """Each expert computes only its units; the results are gate-mixed.

    Args:
        experts: The stacked expert bank (``StackedLinear`` or
            ``StackedChain``) of ``N`` experts.
        expert_ids: ``(N,)`` int64 ``0..N-1``, on the units' device.
        units: ``(U, C)`` tokens for grid routing, ``(U, H*W, C)`` images
            for image routing.
        gates, expert_index: ``(U, k)``.

    Returns:
        The mixed outputs ``(U, C_out)`` or ``(U, H*W, C_out)``, and
        ``(N,)`` int32 cumulative slot counts per expert (expert ``e``
        has ``ends[e] - ends[e - 1]`` slots).
    """
    num_units, top_k = expert_index.shape
    # Slots are the flat (unit, rank) pairs; a stable sort by expert
    # makes each expert's slots one contiguous block, in slot order,
    # which ends where the sorted expert ids pass the expert's id.
    sorted_experts, slot_order = expert_index.flatten().sort(stable=True)
    ends = torch.searchsorted(
        sorted_experts, expert_ids, right=True, out_int32=True)
    inverse_order = torch.empty_like(slot_order).scatter_(
        0, slot_order,
        torch.arange(slot_order.numel(), device=slot_order.device))
    expert_inputs = DispatchToSlots.apply(units, slot_order, inverse_order,
                                          top_k)
    rows = expert_rows(experts, sorted_experts, ends, expert_inputs)
    slot_outputs = experts(
        expert_inputs.reshape(-1, expert_inputs.shape[-1]), rows)
    slot_outputs = UnsortSlots.apply(
        slot_outputs.unflatten(0, expert_inputs.shape[:-1]), slot_order,
        inverse_order)
    slot_outputs = slot_outputs.unflatten(0, (num_units, top_k))
    if gates.dtype != slot_outputs.dtype:
        gates = gates.to(slot_outputs.dtype)
    gates = gates.view(num_units, top_k, *[1] * (slot_outputs.dim() - 2))
    return (slot_outputs * gates).sum(dim=1), ends


def gathered_dispatch() -> bool:
    """Whether GridMoE layers take :func:`run_experts_gathered` now: in an
    ONNX export, or forced (:func:`forced_expert_backend`)."""
    return _forced_backend == 'gather' or torch.onnx.is_in_onnx_export()


def run_experts_gathered(experts: nn.Module, units: torch.Tensor,
                         gates: torch.Tensor,
                         expert_index: torch.Tensor) -> torch.Tensor:
    """Each expert computes the units routed to it, gathered by a mask; the
    gated outputs are added into the result.

    The path of exported graphs: no sort, no host read and no grouped GEMM,
    only operations ONNX has (``NonZero``, ``Gather``,
    ``ScatterElements``), with the expert FLOPs of :func:`run_experts`. A
    unit's k terms are added in expert order instead of rank order (the same
    sum for ``k <= 2``).

    Args:
        experts: The stacked expert bank of ``N`` experts.
        units: ``(U, C)`` tokens, or ``(U, H*W, C)`` images (image routing).
        gates, expert_index: ``(U, k)``.

    Returns:
        ``(U, C_out)`` or ``(U, H*W, C_out)``.
    """
    layers = [experts] if isinstance(experts, StackedLinear) else list(
        experts.children())
    parameters = [
        layer.expert_parameters() if isinstance(layer, StackedLinear) else None
        for layer in layers
    ]
    linears = stacked_linears(experts)
    mixed = units.new_zeros(*units.shape[:-1], linears[-1].out_features)
    for e in range(linears[0].num_experts):
        chosen = expert_index == e  # (U, k), at most one True per row
        rows = chosen.any(dim=1).nonzero().reshape(-1)
        out = units.index_select(0, rows)
        for layer, params in zip(layers, parameters):
            out = layer(out) if params is None else F.linear(out, *params[e])
        # A unit's gate for e: its one chosen slot's (the others add 0).
        gate = (gates * chosen).sum(dim=1).index_select(0, rows)
        gate = gate.view(-1, *[1] * (out.dim() - 1)).to(out.dtype)
        mixed = mixed.index_add(0, rows, out * gate)
    return mixed


def expert_rows(experts: nn.Module, sorted_experts: torch.Tensor,
                ends: torch.Tensor, expert_inputs: torch.Tensor) -> ExpertRows:
    """Where each expert's rows lie, for the backend :func:`use_grouped_mm`
    picks. An image-routed slot is the H*W rows of one image.

    Args:
        experts: The stacked expert bank.
        sorted_experts: ``(S,)`` expert of each slot, sorted.
        ends: ``(N,)`` int32 cumulative slot counts per expert.
        expert_inputs: ``(S, C)`` or ``(S, H*W, C)`` expert-sorted slots.
    """
    rows_per_slot = 1 if expert_inputs.dim() == 2 else expert_inputs.shape[1]
    ends = ends * rows_per_slot if rows_per_slot > 1 else ends
    if not use_grouped_mm(experts, expert_inputs):
        host_ends = ends.tolist()  # the loop's one host sync
        return ExpertRows(None, ends,
                          [b - a for a, b in zip([0] + host_ends, host_ends)])
    # Each row's expert: only the grouped path's bias lookup needs it.
    return ExpertRows(
        sorted_experts.repeat_interleave(rows_per_slot)
        if rows_per_slot > 1 else sorted_experts, ends, None)


def use_grouped_mm(experts: nn.Module, x: torch.Tensor) -> bool:
    """Whether ``experts`` compute input ``x`` with the grouped GEMM (else
    one expert at a time); see the module docstring."""
    if _forced_backend == 'loop' or torch.jit.is_tracing():
        return False
    dtype = compute_dtype(x)
    if not all(
            linear.grouped_mm_fits(dtype)
            for linear in stacked_linears(experts)):
        return False
    if _forced_backend == 'grouped_mm':
        return True
    # The synchronisation-free kernel is CUDA bf16 on sm90+; elsewhere
    # grouped_mm loops over the experts itself, over all-rows buffers.
    return (HAS_GROUPED_MM and x.device.type == 'cuda'
            and dtype == torch.bfloat16
            and torch.cuda.get_device_capability(x.device) >= (9, 0))
