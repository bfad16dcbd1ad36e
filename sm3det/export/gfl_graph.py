"""GFL's test-time decoding (mmdet's ``GFLHead.predict_by_feat``) as a
traceable graph, up to the final NMS.

mmdet's version selects with data-dependent Python (score filtering,
``min(nms_pre, n)``, ``InstanceData``) that tracing would freeze; here every
count is computed in the graph. Per pyramid level, as mmdet does it:
sigmoid class scores of every (location, class) pair, the top ``nms_pre``
pairs, the boxes of their locations (the integral of the distance
distributions times the stride, from the anchor centre), clipped to the
image. The score threshold, rescaling, size filter and class-wise NMS are
the runtime's (``sm3det.deploy``), in mmdet's order.
"""
from typing import Tuple

import torch
from mmdet.models.dense_heads import GFLHead
from mmdet.structures.bbox import distance2bbox, get_box_tensor
from torch import Tensor, nn

from .onnx_ops import topk_up_to


class GFLGraph(nn.Module):
    """GFL head + decoding: pyramid levels -> candidate detections.

    Args:
        head: a trained ``GFLHead`` (its test_cfg gives ``nms_pre``).
    """

    def __init__(self, head: GFLHead):
        super().__init__()
        self.head = head
        self.nms_pre = head.test_cfg.get('nms_pre', -1)

    def forward(self, feats: Tuple[Tensor], image_size: Tensor):
        """Candidates of one image.

        Args:
            feats: the levels the head reads, each ``(1, C, h, w)``.
            image_size: ``(2,)`` float height, width of the resized image
                before padding (boxes are clipped to it).

        Returns:
            boxes ``(M, 4)`` x1, y1, x2, y2 in input pixels, scores ``(M,)``
            and labels ``(M,)`` int64, M = sum over levels of
            ``min(nms_pre, h * w * classes)``.
        """
        head = self.head
        num_classes = head.cls_out_channels
        cls_scores, bbox_preds = head(feats)
        boxes, scores, labels = [], [], []
        for level, (cls_score,
                    bbox_pred) in enumerate(zip(cls_scores, bbox_preds)):
            stride = head.prior_generator.strides[level][0]
            priors = get_box_tensor(
                head.prior_generator.single_level_grid_priors(
                    cls_score.shape[-2:], level, device=cls_score.device))
            distances = head.integral(bbox_pred[0].permute(1, 2, 0)) * stride
            pair_scores = cls_score[0].permute(1, 2, 0).reshape(-1).sigmoid()
            if self.nms_pre > 0:
                pair_scores, pairs = topk_up_to(pair_scores, self.nms_pre)
            else:
                pairs = torch.arange(pair_scores.shape[0])
            locations = torch.div(pairs, num_classes, rounding_mode='floor')
            centers = head.anchor_center(priors.index_select(0, locations))
            boxes.append(
                distance2bbox(centers, distances.index_select(0, locations)))
            scores.append(pair_scores)
            labels.append(pairs % num_classes)
        boxes = torch.cat(boxes)
        height, width = image_size[0], image_size[1]
        boxes = torch.stack([
            boxes[:, 0].clamp(min=0).minimum(width),
            boxes[:, 1].clamp(min=0).minimum(height), boxes[:, 2].clamp(
                min=0).minimum(width), boxes[:, 3].clamp(min=0).minimum(height)
        ], 1)
        return boxes, torch.cat(scores), torch.cat(labels)
