"""The sub-modules of SM3Det's task heads and the loss terms of each.

Dynamic Sub-module Optimisation (DSO) gives every sub-module of a task head
(e.g. DOTA's RPN) its own learning-rate multiplier, computed from that
sub-module's loss terms; the uncertainty-weighting baseline learns one
weight per sub-module. Both read the grouping from here (and sort the loss
keys with :func:`sm3det.models.losses.loss_groups.group_loss_keys`), so a
head pair with other loss keys (RoI Transformer's ``s0.loss_cls``, S2ANet's
``loss_cls_init`` / ``loss_cls_refine_0``) needs no list of loss names.

A task entry of ``SM3Det(tasks=...)`` may give ``sub_modules``: child module
path in the head -> fnmatch pattern(s) of its loss keys (without the task
prefix), e.g. ``dict(bbox_head_init='*_init', bbox_head_refine='*_refine_*')``
for S2ANet. A loss key belongs to the first sub-module, in the given order,
whose pattern matches it. Without ``sub_modules``:

* a two-stage head (mmdet's ``TwoStageDetector``: Faster / Oriented / Cascade
  R-CNN, RoI Transformer) gives ``rpn_head`` (its keys contain ``rpn``, as
  ``TwoStageDetector.loss`` names them) and ``roi_head`` (every other key
  with ``loss`` in it: ``loss_cls``, ``s0.loss_bbox``, not ``acc``);
* any other head is one sub-module with all its loss keys (``*loss*``).
"""
from dataclasses import dataclass
from typing import Dict, Mapping, Optional, Tuple

from mmdet.models.detectors import TwoStageDetector
from torch import nn

from ...utils.module_paths import in_module

#: What the two-stage default gives: the RPN first, so that its keys are
#: taken before the RoI head's catch-all pattern.
TWO_STAGE_SUB_MODULES = dict(rpn_head='*rpn*', roi_head='*loss*')


# A dataclass, not a tuple: mmengine's ConfigDict rebuilds tuples it is given.
@dataclass(frozen=True)
class SubModule:
    """One sub-module of a task head.

    Attributes:
        prefix (str): the parameter name prefix in the detector, e.g.
            ``'heads.dota.rpn_head'``.
        losses (tuple[str]): fnmatch patterns of its loss keys in the
            detector's loss dict, e.g. ``('dota.*rpn*', )``.
    """
    prefix: str
    losses: Tuple[str, ...]


def head_sub_modules(
        task: str,
        head: nn.Module,
        sub_modules: Optional[Mapping] = None) -> Dict[str, SubModule]:
    """The sub-modules of one task head, named ``<task>[.<child path>]``.

    Args:
        task (str): the task name (its loss keys start with ``<task>.``).
        head (nn.Module): the built task head (a detector without backbone
            and neck), registered as ``heads.<task>`` in SM3Det.
        sub_modules (dict, optional): child module path -> loss key
            pattern(s); None: the default of the module docstring.

    Returns:
        dict: name (``'sar'``, ``'dota.rpn_head'``) -> :class:`SubModule`,
        in matching order.

    Raises:
        ValueError: a child path that is no module of the head, a pattern
            that is no string, or head parameters outside every sub-module
            (DSO would silently treat them as shared).
    """
    if sub_modules is None:
        sub_modules = (
            TWO_STAGE_SUB_MODULES if isinstance(head, TwoStageDetector) else {
                '': '*loss*'
            })
    if not isinstance(sub_modules, Mapping) or not sub_modules:
        raise ValueError(f"tasks['{task}'].sub_modules must be a non-empty "
                         'dict from child module path to loss key '
                         f'pattern(s), got {sub_modules!r}')
    children = dict(head.named_modules())
    result = {}
    for path, patterns in sub_modules.items():
        patterns = (patterns, ) if isinstance(patterns, str) else patterns
        if path not in children:
            raise ValueError(
                f"tasks['{task}'].sub_modules: {path!r} is no module of "
                f'its {type(head).__name__}; its children are '
                f'{[name for name, _ in head.named_children()]}')
        if not patterns or not all(isinstance(p, str) and p for p in patterns):
            raise ValueError(
                f"tasks['{task}'].sub_modules[{path!r}]: expected a loss key "
                f'pattern or a list of them, got {patterns!r}')
        name = f'{task}.{path}' if path else task
        result[name] = SubModule(
            prefix=f'heads.{name}',
            losses=tuple(f'{task}.{p}' for p in patterns))
    uncovered = [
        name for name, _ in head.named_parameters()
        if not any(in_module(name, path) for path in sub_modules)
    ]
    if uncovered:
        raise ValueError(
            f"tasks['{task}'].sub_modules {list(sub_modules)} leave "
            f'parameters of the head outside every sub-module, e.g. '
            f'{uncovered[:3]}; add the modules that hold them')
    return result
