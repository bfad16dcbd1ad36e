"""MoE bookkeeping for any model that contains GridMoE layers.

A backbone (or any module) that uses :class:`~.grid_moe.GridMoE` layers needs
no MoE-specific method of its own: these functions find the layers by type.

- :func:`moe_layers`: the layers in module order, keyed by module name;
- :func:`moe_balance_loss`: the mean balance loss of the training layers'
  last forward (what ``SM3Det.loss`` adds as ``loss_moe_balance``);
- :func:`record_moe_routing`: switch routing statistics on or off.

Keeping only some experts per layer (per-sensor export) is
:func:`~.expert_pruning.prune_experts`.

Loading a dense checkpoint into the experts needs nothing here: every GridMoE
expands a dense expert's weights itself when ``load_state_dict`` meets them
(a ``load_state_dict`` pre-hook; see the GridMoE docstring).
"""
from collections import OrderedDict
from typing import Optional

import torch
import torch.nn as nn

from .grid_moe import GridMoE


def moe_layers(module: nn.Module) -> 'OrderedDict[str, GridMoE]':
    """All GridMoE layers under ``module`` (itself included), in
    ``named_modules`` order (registration order: for a backbone, the forward
    order), keyed by their module name relative to ``module``
    (e.g. ``'stages.2.0.mlp'``; ``''`` for ``module`` itself)."""
    return OrderedDict((name, m) for name, m in module.named_modules()
                       if isinstance(m, GridMoE))


def moe_balance_loss(module: nn.Module) -> Optional[torch.Tensor]:
    """Mean weighted balance loss of the training GridMoE layers' last
    forward, a scalar; None when no GridMoE layer under ``module`` is in
    training mode (a dense model, eval mode, frozen MoE stages).

    Call it after a forward in training mode.

    Raises:
        RuntimeError: a training layer has no balance loss yet (no training
            forward since it was built or switched to training).
    """
    layers = [(name, m) for name, m in moe_layers(module).items()
              if m.training]
    if not layers:
        return None
    missing = [name for name, m in layers if m.last_balance_loss is None]
    if missing:
        raise RuntimeError(
            f'moe_balance_loss: GridMoE layer(s) {missing} are in training '
            'mode but have no balance loss: run a forward in training mode '
            'first')
    return torch.stack([m.last_balance_loss for _, m in layers]).mean()


def record_moe_routing(module: nn.Module,
                       expert_counts: bool = True,
                       expert_map: bool = False) -> None:
    """Switch routing statistics on or off in every GridMoE layer under
    ``module``; read them from each layer's ``last_expert_counts`` /
    ``last_expert_map`` (see :meth:`GridMoE.record_routing`)."""
    for layer in moe_layers(module).values():
        layer.record_routing(expert_counts, expert_map)
