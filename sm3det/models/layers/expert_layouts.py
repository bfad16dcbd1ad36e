"""Checkpoint layouts a GridMoE loads besides its own stacked keys.

A GridMoE stores its experts stacked (``experts.fc1.weight`` ``(N, 4C, C)``,
...; ``experts.weight`` ``(N, C_out, C_in)``). Its ``load_state_dict``
pre-hook :func:`load_other_expert_layouts` rewrites two other layouts into
that one before the load:

- per-expert keys ``experts.<e>.<key>`` (checkpoints of the layer before its
  experts were stacked, and the keys the original-SM3Det converter renames
  to): the ``N`` tensors of each key are stacked;
- a dense checkpoint: a GridMoE that stands where a dense expert module stood
  (a ConvNeXt MLP ``mlp``, a 1x1 conv ``fc1``) finds that module's keys at
  its own prefix and copies them into every expert, so a backbone that swaps
  a dense layer for a GridMoE loads its dense checkpoint with no key
  rewriting and then computes what the dense model computes.

In both, a 1x1 conv weight ``(C_out, C_in, 1, 1)`` is taken for a linear
``(C_out, C_in)`` one (:func:`as_expert_tensor`).
"""
import math
from typing import Dict

import torch
import torch.nn as nn


def expert_shapes(experts: nn.Module) -> Dict[str, torch.Size]:
    """Key of one expert's state dict (``fc1.weight``, ...) -> the shape of
    that tensor in one expert, for a stacked expert bank."""
    return {k: v.shape[1:] for k, v in experts.state_dict().items()}


def as_expert_tensor(key: str, value: torch.Tensor,
                     shape: torch.Size) -> torch.Tensor:
    """A checkpoint tensor in an expert's ``shape``: a 1x1 conv weight
    ``(C_out, C_in, 1, 1)`` becomes ``(C_out, C_in)``.

    Raises:
        ValueError: the element counts differ (names ``key``).
    """
    if value.shape == shape:
        return value
    if value.numel() == math.prod(shape):
        return value.reshape(shape)
    raise ValueError(f'GridMoE: checkpoint tensor {key} has shape '
                     f'{tuple(value.shape)}; an expert needs {tuple(shape)}')


def load_other_expert_layouts(module: nn.Module, state_dict: dict, prefix: str,
                              local_metadata, strict, missing_keys,
                              unexpected_keys, error_msgs) -> None:
    """``load_state_dict`` pre-hook of a GridMoE ``module``: other expert
    layouts -> stacked keys.

    1. Per-expert keys ``<prefix>experts.<e>.<key>`` of all ``N`` experts
       are stacked into ``<prefix>experts.<key>``.
    2. When no expert key of this layer is left (``<prefix>experts.*``),
       the keys of one dense expert (``<prefix>fc1.weight``,
       ``<prefix>weight``, ...) are copied into every expert.

    The keys taken are replaced, so a strict load is satisfied; shape
    problems are reported by name through ``load_state_dict``'s errors.
    """
    shapes = expert_shapes(module.experts)
    num_experts = module.num_experts
    for key, shape in shapes.items():
        per_expert = {}
        for name in list(state_dict):
            head = prefix + 'experts.'
            if name.startswith(head) and name.endswith('.' + key):
                index = name[len(head):-len(key) - 1]
                if index.isdigit():
                    per_expert[int(index)] = name
        if not per_expert:
            continue
        if sorted(per_expert) != list(range(num_experts)):
            error_msgs.append(
                f'GridMoE {prefix!r}: the checkpoint has per-expert '
                f'{key!r} for experts {sorted(per_expert)}, the layer has '
                f'{num_experts} experts')
            continue
        try:
            tensors = [
                as_expert_tensor(per_expert[e], state_dict[per_expert[e]],
                                 shape) for e in range(num_experts)
            ]
        except ValueError as error:
            error_msgs.append(str(error))
            continue
        for name in per_expert.values():
            del state_dict[name]
        state_dict[prefix + 'experts.' + key] = torch.stack(tensors)

    if any(name.startswith(prefix + 'experts.') for name in state_dict):
        return
    for key, shape in shapes.items():
        if prefix + key not in state_dict:
            continue
        try:
            value = as_expert_tensor(prefix + key, state_dict[prefix + key],
                                     shape)
        except ValueError as error:
            error_msgs.append(str(error))
            continue
        del state_dict[prefix + key]
        state_dict[prefix + 'experts.' + key] = value.expand(
            num_experts, *shape).contiguous()
