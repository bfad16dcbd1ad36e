"""Rotated-box average precision (VOC "area" rule) at many IoU thresholds.

The evaluation of the OBB parts of SOI-Det (DOTA, DroneVehicle): per class,
detections are matched greedily to ground truth in descending score order, and
AP is the area under the all-point interpolated precision-recall curve, at each
IoU threshold of 0.50:0.05:0.95 (docs/method.md section 6).

The matching rule is mmrotate's ``tpfp_default`` (the VOC rule), reproduced
exactly so that the numbers equal mmrotate's ``eval_rbbox_map``:

- a detection looks only at the ground-truth box it overlaps most (ignored
  boxes included, ignored ones placed after the others for ties);
- if that IoU is >= the threshold: the box is ignored (DOTA "difficult") ->
  the detection is neither TP nor FP; the box is still free -> TP and the box
  is taken; the box is already taken -> FP (no fallback to the second best);
- otherwise FP.

Unlike ``eval_rbbox_map`` (a spawn pool and a full IoU pass per threshold),
each image's rotated IoUs are computed once per class and reused for every
threshold, and the outcome of each detection is kept as a tiny int8 array.
"""
from typing import Sequence, Tuple

import numpy as np
import torch
from mmcv.ops import box_iou_rotated
from mmdet.evaluation.functional import average_precision

TRUE_POSITIVE = 1
FALSE_POSITIVE = 0
IGNORED = -1


def rotated_iou(bboxes1: np.ndarray, bboxes2: np.ndarray) -> np.ndarray:
    """Rotated IoU of every pair, as mmcv's ``box_iou_rotated`` computes it.

    Only pairs whose bounding circles overlap can have a non-zero IoU; the
    exact (slow, polygon clipping) IoU is computed for those pairs alone, by
    the same kernel in its one-to-one mode, so the values are identical.

    Args:
        bboxes1: (N, 5) float32 boxes (cx, cy, w, h, angle in radians).
        bboxes2: (M, 5) float32 boxes, same format.

    Returns:
        np.ndarray: (N, M) float32 IoUs.
    """
    radius1 = np.hypot(bboxes1[:, 2], bboxes1[:, 3]) / 2
    radius2 = np.hypot(bboxes2[:, 2], bboxes2[:, 3]) / 2
    distance = np.hypot(bboxes1[:, None, 0] - bboxes2[None, :, 0],
                        bboxes1[:, None, 1] - bboxes2[None, :, 1])
    rows, cols = np.nonzero(distance < radius1[:, None] + radius2[None, :])
    ious = np.zeros((len(bboxes1), len(bboxes2)), np.float32)
    if len(rows):
        ious[rows, cols] = box_iou_rotated(
            torch.from_numpy(bboxes1[rows]),
            torch.from_numpy(bboxes2[cols]),
            aligned=True).numpy()
    return ious


def match_rotated_detections(det_bboxes: np.ndarray, det_scores: np.ndarray,
                             det_labels: np.ndarray, gt_bboxes: np.ndarray,
                             gt_labels: np.ndarray, ignored_bboxes: np.ndarray,
                             ignored_labels: np.ndarray,
                             iou_thrs: Sequence[float]) -> np.ndarray:
    """Classify each detection of one image as TP / FP / ignored per IoU thr.

    Args:
        det_bboxes: (N, 5) detections, (cx, cy, w, h, angle in radians), px.
        det_scores: (N,) confidences.
        det_labels: (N,) class indices.
        gt_bboxes: (G, 5) ground-truth boxes, same format.
        gt_labels: (G,) class indices.
        ignored_bboxes: (K, 5) ground truth to ignore (DOTA difficult).
        ignored_labels: (K,) class indices.
        iou_thrs: T IoU thresholds; a detection matches when IoU >= thr.

    Returns:
        np.ndarray: (T, N) int8 of ``TRUE_POSITIVE``, ``FALSE_POSITIVE`` or
        ``IGNORED``, columns in the order of the input detections.
    """
    # Compared in float32 like mmrotate (float32 IoU vs a weakly typed float).
    thrs = np.asarray(iou_thrs, dtype=np.float32)[:, None]
    outcomes = np.full((len(thrs), len(det_scores)), FALSE_POSITIVE, np.int8)
    for label in np.unique(det_labels):
        det_inds = np.flatnonzero(det_labels == label)
        real = gt_bboxes[gt_labels == label]
        candidates = np.concatenate(
            [real, ignored_bboxes[ignored_labels == label]])
        if len(candidates) == 0:
            continue  # nothing to match: every detection stays a FP
        is_ignored = np.arange(len(candidates)) >= len(real)
        ious = rotated_iou(det_bboxes[det_inds].astype(np.float32),
                           candidates.astype(np.float32))
        # Same sort call as mmrotate, so equal scores break ties the same way.
        order = np.argsort(-det_scores[det_inds])
        best_gt = ious.argmax(axis=1)[order]
        best_iou = ious.max(axis=1)[order]
        sorted_inds = det_inds[order]
        for t, thr in enumerate(thrs[:, 0]):
            hits = np.flatnonzero(best_iou >= thr)
            targets = best_gt[hits]
            hit_outcome = np.full(len(hits), FALSE_POSITIVE, np.int8)
            # The first (highest-scored) hit on a box takes it, later hits
            # on the same box are duplicates, i.e. false positives.
            _, first = np.unique(targets, return_index=True)
            hit_outcome[first] = TRUE_POSITIVE
            hit_outcome[is_ignored[targets]] = IGNORED
            outcomes[t, sorted_inds[hits]] = hit_outcome
    return outcomes


def rotated_class_ap(
        outcomes: np.ndarray, scores: np.ndarray, labels: np.ndarray,
        gt_labels: np.ndarray,
        num_classes: int) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-class, per-threshold AP from matched detections of a whole test set.

    Args:
        outcomes: (T, D) outputs of :func:`match_rotated_detections` of every
            image, concatenated along the detection axis in image order.
        scores: (D,) the detections' confidences, same order.
        labels: (D,) the detections' class indices, same order.
        gt_labels: (G,) class indices of every non-ignored ground-truth box.
        num_classes: number of classes C.

    Returns:
        tuple: ``ap`` (T, C) float64 AP in [0, 1], NaN for classes without
        ground truth (they are skipped from means); ``num_gts`` (C,);
        ``num_dets`` (C,).
    """
    eps = np.finfo(np.float32).eps
    num_gts = np.bincount(gt_labels, minlength=num_classes)[:num_classes]
    num_dets = np.bincount(labels, minlength=num_classes)[:num_classes]
    ap = np.full((outcomes.shape[0], num_classes), np.nan)
    for c in np.flatnonzero(num_gts):
        in_class = np.flatnonzero(labels == c)
        ranked = outcomes[:, in_class[np.argsort(-scores[in_class])]]
        tp = np.cumsum(ranked == TRUE_POSITIVE, axis=1, dtype=np.float64)
        fp = np.cumsum(ranked == FALSE_POSITIVE, axis=1, dtype=np.float64)
        recalls = tp / num_gts[c]
        precisions = tp / np.maximum(tp + fp, eps)
        ap[:, c] = average_precision(recalls, precisions, mode='area')
    return ap, num_gts, num_dets
