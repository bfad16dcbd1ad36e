"""Uncertainty loss weighting (Kendall, Gal and Cipolla, "Multi-Task Learning
Using Uncertainty to Weigh Losses for Scene Geometry and Semantics", CVPR
2018): a baseline of SM3Det's Table 1.

Every weighted unit ``i`` gets a learned log-variance ``s_i`` (initialised
to 0, i.e. weight 1), and its loss ``L_i`` becomes

    L_i' = exp(-s_i) * L_i + s_i

the same form for every unit (the common multi-task implementation). Kendall
et al.'s Gaussian-regression form, ``0.5 * exp(-s_i) * L_i + 0.5 * s_i``, is
exactly half of it: the same optimum ``s_i = log L_i`` for a fixed loss, with
gradients halved. ``s_i`` is unbounded; the ``+ s_i`` term keeps it from
running to infinity, so a weighted term can be negative.

A unit is either one named loss term (``loss_terms``) or, by default, one
sub-module of a task head with all its loss terms, from the detector's
``sub_modules`` (the grouping DSO uses; SOI-Det: the SAR head, each OBB
head's RPN and RoI head), so any head pair is weighted without a list of its
loss names.
"""
from typing import Dict, List, Mapping, Optional, Sequence, Union

import torch
import torch.nn as nn
from mmrotate.registry import MODELS
from torch import Tensor

from .loss_groups import group_loss_keys

LossValue = Union[Tensor, List[Tensor]]


def weight_key(loss_key: str) -> str:
    """Log key of a term's weight: ``'sar.loss_cls'`` -> ``'sar.weight_cls'``.

    Without 'loss' in it, so mmengine logs the weight but does not add it to
    the total loss (``BaseModel.parse_losses`` sums the keys with 'loss').
    """
    return loss_key.replace('loss', 'weight')


@MODELS.register_module()
class UncertaintyLossWeighting(nn.Module):
    """Learned homoscedastic-uncertainty weights of loss terms.

    Args:
        loss_terms (Sequence[str], optional): keys of the loss dict to
            weight, one ``s_i`` each, e.g. ``['sar.loss_cls', ...]``. None
            (default): one ``s_i`` per entry of ``sub_modules``.
        sub_modules (dict, optional): sub-module name -> an object with
            ``losses``, the fnmatch patterns of its loss keys (SM3Det passes
            its ``sub_modules``); used when ``loss_terms`` is None.

    Keys of the loss dict outside every unit pass through unchanged.

    Attributes:
        units (list[str]): the weighted loss terms or sub-modules.
        log_variances (nn.Parameter): ``(len(units),)``, the ``s_i``.
    """

    def __init__(self,
                 loss_terms: Optional[Sequence[str]] = None,
                 sub_modules: Optional[Mapping] = None):
        super().__init__()
        if loss_terms is not None:
            loss_terms = list(loss_terms)
            if len(set(loss_terms)) != len(loss_terms):
                raise ValueError(f'loss_terms repeat a key: {loss_terms}')
            not_losses = [k for k in loss_terms if 'loss' not in k]
            if not_losses:
                raise ValueError(
                    f'loss_terms {not_losses} are no losses: mmengine sums '
                    "only the keys containing 'loss'")
            self.per_term = True
            self._patterns = {term: (term, ) for term in loss_terms}
        elif sub_modules:
            self.per_term = False
            self._patterns = {
                name: tuple(sub_module.losses)
                for name, sub_module in sub_modules.items()
            }
        else:
            raise ValueError(
                'UncertaintyLossWeighting needs loss_terms or sub_modules '
                "(SM3Det's, passed when built as its loss_weighting)")
        if not self._patterns:
            raise ValueError('UncertaintyLossWeighting needs loss_terms')
        self.units = list(self._patterns)
        self.log_variances = nn.Parameter(torch.zeros(len(self.units)))

    def forward(self, losses: Dict[str, LossValue]) -> Dict[str, LossValue]:
        """Weight the units present in ``losses``.

        Args:
            losses (dict): A detector's loss dict; a value is a tensor or a
                list of tensors (per-level losses), reduced as mmengine does
                (mean of each tensor, summed over the list).

        Returns:
            dict: ``losses`` with every term of a present unit ``i`` scaled
            by ``exp(-s_i)`` and ``s_i`` added: to the term itself for a
            per-term unit, as ``<sub-module>.loss_log_variance`` for a
            sub-module. The weight ``exp(-s_i)`` is logged under
            :func:`weight_key` (``sar.weight_cls``, ``dota.rpn_head.weight``).
            Units absent from the batch (a dataset without images in it) are
            left out, their ``s_i`` get no gradient.
        """
        weighted = dict(losses)
        # Only the keys mmengine sums are losses (not e.g. dota.acc).
        groups = group_loss_keys([k for k in losses if 'loss' in k],
                                 self._patterns)
        for unit, log_variance in zip(self.units, self.log_variances):
            if not groups[unit]:
                continue
            weight = torch.exp(-log_variance)
            for term in groups[unit]:
                weighted[term] = weight * _reduce(losses[term])
            if self.per_term:
                weighted[unit] = weighted[unit] + log_variance
                weighted[weight_key(unit)] = weight.detach()
            else:
                weighted[f'{unit}.loss_log_variance'] = log_variance
                weighted[f'{unit}.weight'] = weight.detach()
        return weighted


def _reduce(value: LossValue) -> Tensor:
    """A loss value as mmengine's ``parse_losses`` reduces it."""
    if isinstance(value, Tensor):
        return value.mean()
    return sum(level.mean() for level in value)
