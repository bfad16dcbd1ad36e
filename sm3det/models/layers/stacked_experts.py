"""The experts of a GridMoE layer stored as stacked parameters.

``N`` experts of one type become one module whose parameters carry a leading
expert dimension: a linear expert (``PointwiseConv``, any ``nn.Linear``) is a
:class:`StackedLinear` with ``weight (N, C_out, C_in)`` and ``bias (N,
C_out)``; an expert that chains linear layers and parameter-free modules (the
ConvNeXt MLP: ``fc1 -> act -> fc2``) is a :class:`StackedChain` of them, e.g.
``fc1.weight (N, 4C, C)``, ``fc1.bias (N, 4C)``, ``fc2.weight (N, C, 4C)``,
``fc2.bias (N, C)``. Expert ``e`` is slice ``e`` of every tensor.

The rows of the input are sorted by expert (:class:`ExpertRows` says where
each expert's block ends) and the bank computes every expert's rows in one of
two ways:

- ``torch.nn.functional.grouped_mm``: every stacked linear layer is one
  grouped GEMM over all rows, with no host synchronisation. The fast path on
  CUDA for bf16 on sm90 or newer (H100 / H200), where each operation is a
  kernel launch and a host sync stalls the GPU.
- one expert at a time (the counts are read on the host once per layer
  forward): each expert's rows go through the whole expert, ``F.linear``
  with that expert's weights. Used on CPU, where it was measured faster
  (1.67 vs 2.00 s for a stage-3 layer's forward + backward: the CPU
  ``grouped_mm`` is a loop of matmuls too, and the grouped path adds the
  bias by a gather over all rows and keeps all rows' intermediates at once,
  over 100 MB there, where one expert's stay in cache and heap), and with
  older torch, other GPUs, fp16 / fp32 on CUDA, and row widths
  ``grouped_mm`` cannot take (its rows must be 16-byte aligned).
"""
from typing import List, NamedTuple, Optional, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

#: Whether the installed torch has the grouped GEMM.
HAS_GROUPED_MM = hasattr(F, 'grouped_mm')


class ExpertRows(NamedTuple):
    """Where each expert's rows lie in an expert-sorted input.

    Attributes:
        row_expert: ``(R,)`` int64 expert of each row (non-decreasing) on
            the grouped path, None on the other.
        ends: ``(N,)`` int32 cumulative row counts: expert ``e`` owns rows
            ``ends[e-1]:ends[e]`` (``grouped_mm``'s ``offs``).
        host_counts: Per-expert row counts as a Python list for the
            one-expert-at-a-time path, None on the grouped path (so no
            host sync).
    """
    row_expert: Optional[torch.Tensor]
    ends: torch.Tensor
    host_counts: Optional[List[int]]


def compute_dtype(x: torch.Tensor) -> torch.dtype:
    """The dtype a linear layer computes in: autocast's if it is on for
    ``x``'s device (``grouped_mm`` is not cast by autocast), else ``x``'s."""
    device_type = x.device.type
    if torch.is_autocast_enabled(device_type):
        return torch.get_autocast_dtype(device_type)
    return x.dtype


class StackedLinear(nn.Module):
    """``N`` linear layers ``C_in -> C_out`` as one ``(N, C_out, C_in)``
    weight and one ``(N, C_out)`` bias.

    ``weight[e]`` and ``bias[e]`` are expert ``e``'s ``nn.Linear`` weight and
    bias. A backbone's own init of ``nn.Linear`` weights (e.g. ConvNeXt's
    truncated normal) should treat ``weight`` alike: it is elementwise
    i.i.d. per expert.

    Args:
        num_experts (int): ``N``.
        in_features (int): ``C_in``.
        out_features (int): ``C_out``.
        bias (bool): Defaults to True.
    """

    def __init__(self,
                 num_experts: int,
                 in_features: int,
                 out_features: int,
                 bias: bool = True):
        super().__init__()
        self.num_experts = num_experts
        self.in_features = in_features
        self.out_features = out_features
        self.weight = nn.Parameter(
            torch.empty(num_experts, out_features, in_features))
        self.bias = nn.Parameter(torch.empty(num_experts,
                                             out_features)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Each expert as a fresh ``nn.Linear``: ``U(-1/sqrt(C_in),
        1/sqrt(C_in))`` for weight and bias."""
        bound = self.in_features**-0.5
        nn.init.uniform_(self.weight, -bound, bound)
        if self.bias is not None:
            nn.init.uniform_(self.bias, -bound, bound)

    @classmethod
    def stack(cls, linears: Sequence[nn.Linear]) -> 'StackedLinear':
        """Stack the weights of ``N`` linear layers of one shape."""
        first = linears[0]
        stacked = cls(
            len(linears),
            first.in_features,
            first.out_features,
            bias=first.bias is not None)
        with torch.no_grad():
            stacked.weight.copy_(torch.stack([m.weight for m in linears]))
            if stacked.bias is not None:
                stacked.bias.copy_(torch.stack([m.bias for m in linears]))
        return stacked

    def extra_repr(self) -> str:
        return (f'num_experts={self.num_experts}, in_features='
                f'{self.in_features}, out_features={self.out_features}, '
                f'bias={self.bias is not None}')

    @torch.no_grad()
    def keep_experts(self, indices: List[int]) -> None:
        """Keep experts ``indices`` (in that order), in place."""
        for name in ('weight', 'bias'):
            param = getattr(self, name)
            if param is not None:
                setattr(
                    self, name,
                    nn.Parameter(
                        param[indices].clone(),
                        requires_grad=param.requires_grad))
        self.num_experts = len(indices)

    def grouped_mm_fits(self, dtype: torch.dtype) -> bool:
        """``grouped_mm`` needs 16-byte aligned rows of input and output."""
        itemsize = torch.empty((), dtype=dtype).element_size()
        return all(features * itemsize % 16 == 0
                   for features in (self.in_features, self.out_features))

    def expert_parameters(self) -> List[tuple]:
        """``[(weight_e, bias_e or None)]`` per expert: views made by one
        ``unbind`` per tensor, so their gradients come back as one stacked
        gradient (indexing per expert would make ``N`` full-size ones)."""
        weights = self.weight.unbind(0)
        biases = self.bias.unbind(0) if self.bias is not None else \
            [None] * self.num_experts
        return list(zip(weights, biases))

    def forward(self, x: torch.Tensor, rows: ExpertRows) -> torch.Tensor:
        """Expert-sorted rows ``(R, C_in)`` -> ``(R, C_out)``: one grouped
        GEMM, or one expert at a time where ``rows`` has host counts."""
        if rows.host_counts is not None:
            return run_one_expert_at_a_time([self], x, rows.host_counts)
        dtype = compute_dtype(x)
        out = F.grouped_mm(
            _as(x, dtype),
            _as(self.weight, dtype).transpose(1, 2),
            offs=rows.ends)
        if self.bias is not None:  # grouped_mm takes no per-group bias
            out = out + _as(self.bias, dtype).index_select(0, rows.row_expert)
        return out


def _as(tensor: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """``tensor`` in ``dtype`` (no operation when it already is)."""
    return tensor if tensor.dtype == dtype else tensor.to(dtype)


class StackedChain(nn.Module):
    """``N`` experts that each apply their children in registration order:
    linear layers (stacked) and parameter-free modules (shared), e.g.
    ConvNeXtMLP's ``fc1 -> act -> fc2``."""

    def __init__(self, layers: 'dict[str, nn.Module]'):
        super().__init__()
        for name, layer in layers.items():
            self.add_module(name, layer)

    def stacked_linears(self) -> List[StackedLinear]:
        return [m for m in self.children() if isinstance(m, StackedLinear)]

    def forward(self, x: torch.Tensor, rows: ExpertRows) -> torch.Tensor:
        """Expert-sorted rows ``(R, C_in)`` -> ``(R, C_out)``."""
        if rows.host_counts is not None:
            return run_one_expert_at_a_time(
                list(self.children()), x, rows.host_counts)
        for layer in self.children():
            x = layer(x, rows) if isinstance(layer, StackedLinear) else \
                layer(x)
        return x


def run_one_expert_at_a_time(layers: Sequence[nn.Module], x: torch.Tensor,
                             counts: List[int]) -> torch.Tensor:
    """Apply ``layers`` (stacked linear layers with expert ``e``'s weights,
    parameter-free modules as they are) to each expert's block of rows.

    Args:
        layers: An expert bank's layers, in order.
        x: ``(R, C_in)`` rows sorted by expert.
        counts: Rows per expert, ``sum(counts) == R``.

    Returns:
        ``(R, C_out)``.
    """
    parameters = [
        layer.expert_parameters() if isinstance(layer, StackedLinear) else None
        for layer in layers
    ]
    # No rows at all: expert 0 maps the empty input to the right width.
    experts = [e for e, count in enumerate(counts) if count] or [0]
    blocks = x.split(counts)
    outputs = []
    for e in experts:
        block = blocks[e]
        for layer, params in zip(layers, parameters):
            block = layer(block) if params is None else F.linear(
                block, *params[e])
        outputs.append(block)
    return torch.cat(outputs) if len(outputs) > 1 else outputs[0]


def stack_experts(experts: Sequence[nn.Module]) -> nn.Module:
    """The stacked form of ``N`` experts of one type (their current weights).

    Supported: a linear layer (``nn.Linear``, ``PointwiseConv``), or a
    module whose forward applies its children in registration order, each a
    linear layer or a parameter-free module (checked on a random input unless
    the weights are on the meta device).

    Raises:
        TypeError: any other expert.
    """
    first = experts[0]
    if isinstance(first, nn.Linear):
        return StackedLinear.stack(experts)
    children = dict(first.named_children())
    own_state = list(first.named_parameters(recurse=False)) + list(
        first.named_buffers(recurse=False))
    unsupported = [
        name for name, child in children.items()
        if not isinstance(child, nn.Linear) and (any(
            True for _ in child.parameters()) or any(True
                                                     for _ in child.buffers()))
    ]
    if not children or own_state or unsupported or not any(
            isinstance(child, nn.Linear) for child in children.values()):
        raise TypeError(
            f'GridMoE cannot stack experts of type {type(first).__name__}: '
            'an expert must be a linear layer, or apply its children in '
            'order, each a linear layer or parameter-free (like ConvNeXtMLP)' +
            (f'; {unsupported} have parameters' if unsupported else ''))
    _check_is_chain(first, list(children.values()))
    return StackedChain({
        name:
        StackedLinear.stack([getattr(e, name) for e in experts]) if isinstance(
            child, nn.Linear) else child
        for name, child in children.items()
    })


@torch.no_grad()
def _check_is_chain(expert: nn.Module, children: List[nn.Module]) -> None:
    """The expert's forward equals its children applied in order."""
    weight = next(expert.parameters())
    if weight.is_meta:
        return
    was_training = expert.training
    expert.eval()
    in_features = next(c for c in children
                       if isinstance(c, nn.Linear)).in_features
    x = torch.randn(3, in_features, dtype=weight.dtype, device=weight.device)
    expected, chained = expert(x), x
    for child in children:
        chained = child(chained)
    expert.train(was_training)
    if chained.shape != expected.shape or not torch.allclose(
            chained, expected, rtol=1e-4, atol=1e-5):
        raise TypeError(
            f'GridMoE cannot stack experts of type {type(expert).__name__}: '
            'its forward is not its children applied in registration order')


def stacked_linears(bank: nn.Module) -> List[StackedLinear]:
    """The stacked linear layers of an expert bank, in order."""
    if isinstance(bank, StackedLinear):
        return [bank]
    return bank.stacked_linears()
