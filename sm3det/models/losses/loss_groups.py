"""Loss dict keys sorted into groups by fnmatch patterns: the rule that puts
each loss term of SM3Det's task heads into its sub-module (for DSO's
learning-rate multipliers and the uncertainty-weighting baseline; the groups
of a head come from :mod:`sm3det.models.detectors.task_sub_modules`).

A key belongs to the first group, in the given order, one of whose patterns
matches it.
"""
from fnmatch import fnmatchcase
from typing import Dict, Iterable, List, Mapping, Optional


def group_loss_keys(
        keys: Iterable[str],
        sub_modules: Mapping[str, Iterable[str]]) -> Dict[str, List[str]]:
    """Sort loss keys into sub-modules: each key to the first match.

    Args:
        keys: loss dict keys.
        sub_modules: name -> fnmatch patterns of its loss keys, in matching
            order (a ``SubModule``'s ``losses``, see
            :mod:`sm3det.models.detectors.task_sub_modules`, or a config's
            list).

    Returns:
        dict: every sub-module name -> its keys, in the order of ``keys``.
    """
    groups = {name: [] for name in sub_modules}
    for key in keys:
        name = sub_module_of_loss(key, sub_modules)
        if name is not None:
            groups[name].append(key)
    return groups


def sub_module_of_loss(
        key: str, sub_modules: Mapping[str, Iterable[str]]) -> Optional[str]:
    """The sub-module of one loss key (None: no pattern matches it)."""
    for name, patterns in sub_modules.items():
        if any(fnmatchcase(key, pattern) for pattern in patterns):
            return name
    return None
