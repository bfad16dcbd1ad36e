"""Oriented R-CNN's test-time path (mmrotate's ``OrientedRPNHead`` +
mmdet's ``StandardRoIHead`` with a rotated RoI extractor) as a traceable
graph, up to the final rotated NMS.

Where the stock code does not trace, this module computes the same thing
with standard operators:

- proposals: per level the top ``nms_pre`` anchors, decoded by the
  midpoint-offset coder; mmrotate turns the decoded rectangles into
  (cx, cy, w, h, theta) with OpenCV's ``minAreaRect`` per box, here the
  rectangle's sides and angle are read off directly (the same box, le90);
- the RPN's level-wise NMS on the proposals' horizontal hulls: mmcv's
  ``batched_nms`` offsets each level's boxes, here too, then ONNX
  ``NonMaxSuppression``;
- rotated RoIAlign with ``grid_sample`` (:mod:`.rotated_roi_align`).

The RoI head's convolutions and fully connected layers, the anchor
generator and the box coders are the stock modules.
"""
import math
from typing import Tuple

import torch
from mmdet.models.detectors import TwoStageDetector
from mmdet.structures.bbox import get_box_tensor
from mmrotate.models.dense_heads import OrientedRPNHead
from mmrotate.models.roi_heads.roi_extractors import RotatedSingleRoIExtractor
from mmrotate.models.task_modules.coders import (DeltaXYWHTRBBoxCoder,
                                                 MidpointOffsetCoder)
from mmrotate.structures.bbox import RotatedBoxes, rbox2hbox
from torch import Tensor, nn

from .onnx_ops import nms_indices, topk_up_to
from .rotated_roi_align import roi_align_rotated


class OrientedRCNNGraph(nn.Module):
    """RPN, proposal selection, rotated RoI pooling and the RoI head.

    Args:
        detector: a trained Oriented R-CNN (``TwoStageDetector`` with an
            ``OrientedRPNHead``, a ``RotatedSingleRoIExtractor`` and a
            class-agnostic rotated box head); its test_cfg gives the
            proposal counts and NMS.
    """

    def __init__(self, detector: TwoStageDetector):
        super().__init__()
        check_oriented_rcnn(detector)
        self.rpn_head = detector.rpn_head
        self.roi_head = detector.roi_head
        self.rpn_cfg = detector.rpn_head.test_cfg

    def forward(self, feats: Tuple[Tensor], image_size: Tensor):
        """Candidates of one image.

        Args:
            feats: the levels the heads read, each ``(1, C, h, w)``.
            image_size: ``(2,)`` float height, width of the resized image
                before padding (box centres are clipped to it).

        Returns:
            boxes ``(R * K, 5)`` cx, cy, w, h (input pixels), theta
            (radians, le90), scores ``(R * K,)``, labels ``(R * K,)``
            int64: every (RoI, class) pair of the R proposals and K
            classes, in mmdet's ``multiclass_nms`` order.
        """
        proposals = self.proposals(feats)
        cls_score, bbox_pred = self.roi_head.bbox_head(
            self.pool(feats, proposals))
        bbox_head = self.roi_head.bbox_head
        boxes = bbox_head.bbox_coder.decode(proposals, bbox_pred)
        boxes = boxes.tensor if hasattr(boxes, 'tensor') else boxes
        height, width = image_size[0], image_size[1]
        # The coder clips the centres to max_shape - 1, before edge swap.
        boxes = torch.cat([
            boxes[:, :1].clamp(min=0).minimum(width - 1),
            boxes[:, 1:2].clamp(min=0).minimum(height - 1), boxes[:, 2:]
        ], 1)
        scores = cls_score.softmax(-1)[:, :-1]
        num_classes = scores.shape[1]
        labels = torch.arange(num_classes).expand_as(scores)
        return (boxes[:, None].expand(-1, num_classes, -1).reshape(-1, 5),
                scores.reshape(-1), labels.reshape(-1))

    def proposals(self, feats: Tuple[Tensor]) -> Tensor:
        """The RPN's proposals ``(R, 5)`` cx, cy, w, h, theta, by
        decreasing score (``OrientedRPNHead.predict``)."""
        head, cfg = self.rpn_head, self.rpn_cfg
        cls_scores, bbox_preds = head(feats)
        deltas, anchors, scores, levels = [], [], [], []
        for level, (cls_score,
                    bbox_pred) in enumerate(zip(cls_scores, bbox_preds)):
            level_anchors = get_box_tensor(
                head.prior_generator.single_level_grid_priors(
                    cls_score.shape[-2:], level, device=cls_score.device))
            level_scores = cls_score[0].permute(1, 2, 0).reshape(-1).sigmoid()
            level_deltas = bbox_pred[0].permute(1, 2, 0).reshape(
                -1, head.bbox_coder.encode_size)
            if cfg.get('nms_pre', -1) > 0:
                level_scores, keep = topk_up_to(level_scores, cfg.nms_pre)
                level_deltas = level_deltas.index_select(0, keep)
                level_anchors = level_anchors.index_select(0, keep)
            deltas.append(level_deltas)
            anchors.append(level_anchors)
            scores.append(level_scores)
            levels.append(torch.full_like(level_scores, level))
        boxes = midpoint_offset_decode(head.bbox_coder, torch.cat(anchors),
                                       torch.cat(deltas))
        scores, levels = torch.cat(scores), torch.cat(levels)
        if cfg.get('min_bbox_size', -1) >= 0:
            valid = ((boxes[:, 2] > cfg.min_bbox_size) &
                     (boxes[:, 3] > cfg.min_bbox_size)).nonzero().reshape(-1)
            boxes = boxes.index_select(0, valid)
            scores = scores.index_select(0, valid)
            levels = levels.index_select(0, valid)
        # mmcv's batched_nms: each level's boxes moved apart by an offset.
        hulls = rbox2hbox(boxes)
        hulls = hulls + (levels * (hulls.max() + 1))[:, None]
        keep = nms_indices(hulls, scores, cfg.nms.iou_threshold)
        return boxes.index_select(0, keep[:cfg.max_per_img])

    def pool(self, feats: Tuple[Tensor], proposals: Tensor) -> Tensor:
        """``(R, C, 7, 7)`` rotated RoI features, each RoI from its level
        (``RotatedSingleRoIExtractor``)."""
        extractor = self.roi_head.bbox_roi_extractor
        layer = extractor.roi_layers[0]
        num_levels = extractor.num_inputs
        rois = torch.cat(
            [proposals.new_zeros(proposals.shape[0], 1), proposals], 1)
        target_levels = extractor.map_roi_levels(rois, num_levels)
        # Level by level, then back in RoI order (an indexed assignment
        # would be traced with the trace's RoI counts).
        indices, pooled = [], []
        for level in range(num_levels):
            index = (target_levels == level).nonzero().reshape(-1)
            indices.append(index)
            pooled.append(
                roi_align_rotated(feats[level],
                                  proposals.index_select(0, index),
                                  layer.output_size,
                                  1 / extractor.featmap_strides[level],
                                  layer.sampling_ratio, layer.aligned,
                                  layer.clockwise))
        return torch.cat(pooled).index_select(0, torch.cat(indices).argsort())


def midpoint_offset_decode(coder: MidpointOffsetCoder, anchors: Tensor,
                           deltas: Tensor) -> Tensor:
    """The midpoint-offset coder's boxes ``(N, 5)`` (le90) from horizontal
    anchors ``(N, 4)`` and deltas ``(N, 6)``, without OpenCV.

    The coder's quadrilateral (the box, its top and right midpoints moved by
    the offsets) is scaled about its centre into a rectangle; its first side
    gives w and theta, its second h (``minAreaRect`` finds the same box).
    """
    means = deltas.new_tensor(coder.means)
    stds = deltas.new_tensor(coder.stds)
    dx, dy, dw, dh, da, db = (deltas * stds + means).unbind(1)
    max_ratio = abs(math.log(16 / 1000))  # the coder's wh_ratio_clip
    dw, dh = dw.clamp(-max_ratio, max_ratio), dh.clamp(-max_ratio, max_ratio)
    px = (anchors[:, 0] + anchors[:, 2]) * 0.5
    py = (anchors[:, 1] + anchors[:, 3]) * 0.5
    pw = anchors[:, 2] - anchors[:, 0]
    ph = anchors[:, 3] - anchors[:, 1]
    gw, gh = pw * dw.exp(), ph * dh.exp()
    gx, gy = px + pw * dx, py + ph * dy
    da, db = da.clamp(-0.5, 0.5), db.clamp(-0.5, 0.5)
    # Corners relative to the centre: (ga, top), (right, gb), (-ga, bottom).
    corners = torch.stack([
        torch.stack([da * gw, -gh * 0.5], 1),
        torch.stack([gw * 0.5, db * gh], 1),
        torch.stack([-da * gw, gh * 0.5], 1),
    ], 1)
    # The coder scales each half-diagonal to the longest (a rectangle).
    half_diagonals = corners.norm(dim=2)
    longest = torch.maximum(
        torch.maximum(half_diagonals[:, 0], half_diagonals[:, 1]),
        half_diagonals[:, 2])
    corners = corners * (longest[:, None] / half_diagonals)[:, :, None]
    first = corners[:, 1] - corners[:, 0]
    second = corners[:, 2] - corners[:, 1]
    boxes = torch.stack([
        gx, gy,
        first.norm(dim=1),
        second.norm(dim=1),
        torch.atan2(first[:, 1], first[:, 0])
    ], 1)
    return RotatedBoxes(boxes).regularize_boxes(coder.angle_version)


def check_oriented_rcnn(detector: nn.Module) -> None:
    """Raise a ValueError naming what differs from the Oriented R-CNN this
    graph computes."""
    problems = []
    if not isinstance(detector, TwoStageDetector):
        problems.append(f'{type(detector).__name__} is no two-stage detector')
    else:
        if not isinstance(detector.rpn_head, OrientedRPNHead):
            problems.append(
                f'RPN {type(detector.rpn_head).__name__}, not OrientedRPNHead')
        roi_head = detector.roi_head
        if not isinstance(
                getattr(roi_head, 'bbox_roi_extractor', None),
                RotatedSingleRoIExtractor):
            problems.append('RoI extractor is not RotatedSingleRoIExtractor')
        bbox_head = getattr(roi_head, 'bbox_head', None)
        if not isinstance(
                getattr(bbox_head, 'bbox_coder', None), DeltaXYWHTRBBoxCoder):
            problems.append('box head coder is not DeltaXYWHTRBBoxCoder')
        elif not bbox_head.reg_class_agnostic:
            problems.append('box head is not class-agnostic')
    if problems:
        raise ValueError('not an Oriented R-CNN: ' + '; '.join(problems) +
                         '; the ONNX export covers GFL (horizontal boxes) '
                         'and Oriented R-CNN (rotated boxes)')
