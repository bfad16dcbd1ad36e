"""An RoI box head whose classifier scores a label space shared by datasets.

The original SM3Det code trains every head on one label space of all
SOI-Det classes (26: SAR, then DOTA, then DroneVehicle; RoI classifiers
with 27 outputs, background last). A DOTA image's class scores are then a
softmax over all 27 logits. Slicing the classifier to the head's 15 classes
+ background would renormalise the softmax over fewer logits and raise every
score (a different ranking across RoIs, other detections above
``score_thr``), so this head keeps the 27-way classifier and returns, per
RoI, the log-probabilities of its own classes and, in the background slot,
of "anything else" (background + the other datasets' classes). mmdet's
softmax of these ``num_classes + 1`` values gives back exactly the shared
classifier's probabilities of the head's classes.
"""
from typing import Sequence, Tuple

import torch
from mmdet.models.roi_heads.bbox_heads import Shared2FCBBoxHead
from mmrotate.registry import MODELS
from torch import Tensor


@MODELS.register_module()
class SharedLabelSpaceBBoxHead(Shared2FCBBoxHead):
    """mmdet's ``Shared2FCBBoxHead`` with a shared-label-space classifier.

    Args:
        num_shared_classes (int): Classes of the shared label space ``S``;
            ``fc_cls`` has ``S + 1`` outputs, background last.
        class_indices (Sequence[int]): For each of the head's
            ``num_classes`` classes, its index in the shared label space.
        **kwargs: ``Shared2FCBBoxHead`` arguments (``num_classes`` is the
            head's own class count, as usual).

    ``forward`` returns cls scores ``(R, num_classes + 1)``: log-probs of
    the head's classes, then ``log(1 - their sum)``; a softmax of them is the
    shared classifier's probabilities. Training works too: the loss is the
    cross entropy with the other datasets' classes counted as background.
    """

    def __init__(self, num_shared_classes: int, class_indices: Sequence[int],
                 **kwargs):
        super().__init__(**kwargs)
        class_indices = [int(i) for i in class_indices]
        if (len(class_indices) != self.num_classes
                or len(set(class_indices)) != len(class_indices)
                or not all(0 <= i < num_shared_classes
                           for i in class_indices)):
            raise ValueError(
                f'SharedLabelSpaceBBoxHead: class_indices needs '
                f'num_classes={self.num_classes} distinct indices in [0, '
                f'{num_shared_classes}), got {class_indices}')
        if self.custom_cls_channels or not self.with_cls:
            raise ValueError('SharedLabelSpaceBBoxHead needs a softmax '
                             'classifier (no custom_cls_channels loss)')
        self.num_shared_classes = num_shared_classes
        # Rebuilt at the shared width (S + 1 outputs).
        self.fc_cls = MODELS.build(
            dict(
                self.cls_predictor_cfg,
                in_features=self.cls_last_dim,
                out_features=num_shared_classes + 1))
        others = sorted(
            set(range(num_shared_classes + 1)) - set(class_indices))
        self.register_buffer(
            'class_indices', torch.tensor(class_indices), persistent=False)
        self.register_buffer(
            'other_indices', torch.tensor(others), persistent=False)

    def forward(self, x: Tuple[Tensor]) -> tuple:
        """RoI features -> (cls scores ``(R, num_classes + 1)``, bbox
        deltas as in ``Shared2FCBBoxHead``)."""
        shared_scores, bbox_pred = super().forward(x)
        log_probs = shared_scores.log_softmax(dim=-1)
        own = log_probs.index_select(-1, self.class_indices)
        rest = log_probs.index_select(-1, self.other_indices).logsumexp(
            dim=-1, keepdim=True)
        return torch.cat([own, rest], dim=-1), bbox_pred
