"""Uncertainty loss weighting (Kendall, Gal and Cipolla, "Multi-Task Learning
Using Uncertainty to Weigh Losses for Scene Geometry and Semantics", CVPR
2018): a baseline of SM3Det's Table 1.

Every weighted loss term ``L_i`` gets a learned log-variance ``s_i``
(initialised to 0, i.e. weight 1) and becomes

    L_i' = exp(-s_i) * L_i + s_i

the same form for every term (the common multi-task implementation). Kendall
et al.'s Gaussian-regression form, ``0.5 * exp(-s_i) * L_i + 0.5 * s_i``, is
exactly half of it: the same optimum ``s_i = log L_i`` for a fixed loss, with
gradients halved. ``s_i`` is unbounded; the ``+ s_i`` term keeps it from
running to infinity, so a weighted term can be negative.
"""
from typing import Dict, List, Sequence, Union

import torch
import torch.nn as nn
from torch import Tensor

from mmrotate.registry import MODELS

LossValue = Union[Tensor, List[Tensor]]


def weight_key(loss_key: str) -> str:
    """Log key of a term's weight: ``'sar.loss_cls'`` -> ``'sar.weight_cls'``.

    Without 'loss' in it, so mmengine logs the weight but does not add it to
    the total loss (``BaseModel.parse_losses`` sums the keys with 'loss').
    """
    return loss_key.replace('loss', 'weight')


@MODELS.register_module()
class UncertaintyLossWeighting(nn.Module):
    """Learned homoscedastic-uncertainty weights of named loss terms.

    Args:
        loss_terms (Sequence[str]): Keys of the loss dict to weight, e.g.
            ``['sar.loss_cls', 'sar.loss_bbox', ...]``, one ``s_i`` each.
            Keys of the loss dict outside this list pass through unchanged.

    Attributes:
        log_variances (nn.Parameter): ``(len(loss_terms),)``, the ``s_i``.
    """

    def __init__(self, loss_terms: Sequence[str]):
        super().__init__()
        self.loss_terms = list(loss_terms)
        if not self.loss_terms:
            raise ValueError('UncertaintyLossWeighting needs loss_terms')
        if len(set(self.loss_terms)) != len(self.loss_terms):
            raise ValueError(f'loss_terms repeat a key: {self.loss_terms}')
        not_losses = [k for k in self.loss_terms if 'loss' not in k]
        if not_losses:
            raise ValueError(
                f'loss_terms {not_losses} are no losses: mmengine sums only '
                "the keys containing 'loss'")
        self.log_variances = nn.Parameter(torch.zeros(len(self.loss_terms)))

    def forward(self, losses: Dict[str, LossValue]) -> Dict[str, LossValue]:
        """Weight the terms present in ``losses``.

        Args:
            losses (dict): A detector's loss dict; a value is a tensor or a
                list of tensors (per-level losses), reduced as mmengine does
                (mean of each tensor, summed over the list).

        Returns:
            dict: ``losses`` with every present term replaced by
            ``exp(-s_i) * L_i + s_i`` and its weight ``exp(-s_i)`` added
            under :func:`weight_key`. Terms absent from the batch (a dataset
            without images in it) are left out, their ``s_i`` get no
            gradient.
        """
        weighted = dict(losses)
        for term, log_variance in zip(self.loss_terms, self.log_variances):
            if term not in losses:
                continue
            value = losses[term]
            if isinstance(value, Tensor):
                value = value.mean()
            else:
                value = sum(level.mean() for level in value)
            weighted[term] = torch.exp(-log_variance) * value + log_variance
            weighted[weight_key(term)] = torch.exp(-log_variance).detach()
        return weighted
