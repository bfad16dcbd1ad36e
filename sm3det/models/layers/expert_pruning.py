"""Expert pruning: keep only some experts of GridMoE layers, in place.

For exporting a model for one sensor (:mod:`sm3det.apis.task_export`, the
``kept_experts`` entry of an ``SM3Det`` config): experts its images never use
are dropped, and routing among the kept ones is unchanged, bit for bit.

The router and the noise projection of a pruned layer keep scoring every
original expert and the layer takes the kept experts' columns of their
logits (its ``router_columns``, :func:`~.gating.kept_expert_columns`): each
unit's logits of the kept experts are what they were (a GEMM with fewer
columns may round differently), so the choice among them is the same.
"""
from typing import Mapping, Sequence

import torch
import torch.nn as nn

from .moe_utils import moe_layers
from .stacked_experts import stacked_linears


@torch.no_grad()
def keep_experts(layer: nn.Module, indices: Sequence[int]) -> None:
    """Keep only experts ``indices`` (in that order) of GridMoE ``layer``.

    Afterwards ``layer.num_experts == len(indices)`` and expert ``i`` is the
    former expert ``indices[i]``.

    Raises:
        ValueError: repeated or out-of-range indices, or fewer than
            ``top_k`` of them.
    """
    indices = [int(i) for i in indices]
    if (len(set(indices)) != len(indices)
            or not all(0 <= i < layer.num_experts for i in indices)):
        raise ValueError(f'keep_experts needs distinct expert indices in '
                         f'[0, {layer.num_experts}), got {indices}')
    if len(indices) < layer.top_k:
        raise ValueError(f'keep_experts: {len(indices)} expert(s) left '
                         f'{indices}, fewer than top_k={layer.top_k}')
    kept = torch.tensor(indices, device=layer.expert_ids.device)
    layer.router_columns = kept if layer.router_columns is None else \
        layer.router_columns[kept]
    for linear in stacked_linears(layer.experts):
        linear.keep_experts(indices)
    layer.num_experts = len(indices)
    layer.expert_ids = layer.expert_ids[:len(indices)].clone()
    layer.last_balance_loss = None
    layer.last_expert_counts = layer.last_expert_map = None


def prune_experts(module: nn.Module,
                  kept_experts: Mapping[str, Sequence[int]]) -> None:
    """Keep only the given experts of some GridMoE layers, in place.

    Call it on the built model *before* loading the pruned checkpoint, whose
    expert tensors then have the kept number of experts.

    Args:
        module: The model or backbone.
        kept_experts: ``{layer name: [expert indices]}``, layer names as in
            :func:`~.moe_utils.moe_layers` of ``module`` (relative to it,
            e.g. ``'backbone.stages.2.0.mlp'`` for a detector); layers not
            named keep all experts. Plain lists/dicts, so it can be a config
            entry.

    Raises:
        KeyError: a name that is not a GridMoE layer of ``module``.
    """
    layers = moe_layers(module)
    unknown = [name for name in kept_experts if name not in layers]
    if unknown:
        raise KeyError(f'prune_experts: {unknown} are not GridMoE layers of '
                       f'{type(module).__name__}; its layers are '
                       f'{list(layers)}')
    for name, indices in kept_experts.items():
        keep_experts(layers[name], indices)
