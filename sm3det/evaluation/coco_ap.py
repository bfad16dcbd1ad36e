"""COCO-style per-class AP of horizontal boxes, through pycocotools.

The evaluation of the HBB part of SOI-Det (SARDet-50K): COCO box AP (101-point
interpolation, COCO's matching) over all object areas with up to 100
detections per image, per class and per IoU threshold. The ground truth is
built in memory from the evaluated samples (no annotation file), like mmdet's
``CocoMetric`` does without ``ann_file``, but without a round trip through a
json file.
"""
import contextlib
import io
from typing import Sequence, Tuple

import numpy as np
from mmdet.datasets.api_wrappers import COCO, COCOeval
from mmengine.logging import MMLogger

MAX_DETS = 100


def _xyxy_to_xywh(bboxes: np.ndarray) -> np.ndarray:
    return np.concatenate([bboxes[:, :2], bboxes[:, 2:] - bboxes[:, :2]],
                          axis=1)


def _build_coco_pair(samples: Sequence[dict], num_classes: int):
    """The ground truth and detections as pycocotools objects.

    Images get ids 1..n in sample order and class c gets category id c + 1,
    so any ``img_id`` (string or int) works. Ignored ground truth becomes
    COCO "crowd" regions: detections on them count neither way.
    """
    images, annotations, detections = [], [], []
    for image_id, sample in enumerate(samples, start=1):
        images.append(dict(id=image_id, file_name=str(sample['img_id'])))
        for bboxes, labels, crowd in (
            (sample['gt_bboxes'], sample['gt_labels'], 0),
            (sample['ignored_bboxes'], sample['ignored_labels'], 1),
        ):
            for box, label in zip(
                    _xyxy_to_xywh(bboxes).tolist(), labels.tolist()):
                annotations.append(
                    dict(
                        id=len(annotations) + 1,
                        image_id=image_id,
                        category_id=label + 1,
                        bbox=box,
                        area=box[2] * box[3],
                        iscrowd=crowd))
        for box, score, label in zip(
                _xyxy_to_xywh(sample['bboxes']).tolist(),
                sample['scores'].tolist(), sample['labels'].tolist()):
            detections.append(
                dict(
                    image_id=image_id,
                    category_id=label + 1,
                    bbox=box,
                    score=score))
    coco_gt = COCO()
    coco_gt.dataset = dict(
        images=images,
        annotations=annotations,
        categories=[dict(id=c + 1, name=str(c)) for c in range(num_classes)])
    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt.createIndex()
        # pycocotools cannot load an empty result list.
        coco_dt = coco_gt.loadRes(detections) if detections else None
    return coco_gt, coco_dt


def coco_class_ap(
        samples: Sequence[dict], num_classes: int, iou_thrs: Sequence[float]
) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-class, per-threshold COCO AP of horizontal boxes.

    Args:
        samples: one dict per image with numpy arrays ``bboxes`` (N, 4)
            x1,y1,x2,y2 px, ``scores`` (N,), ``labels`` (N,), ``gt_bboxes``
            (G, 4), ``gt_labels`` (G,), ``ignored_bboxes`` (K, 4),
            ``ignored_labels`` (K,), and ``img_id``.
        num_classes: number of classes C; labels are 0..C-1.
        iou_thrs: T IoU thresholds.

    Returns:
        tuple: ``ap`` (T, C) float64 AP in [0, 1], NaN for classes without
        ground truth; ``num_gts`` (C,) non-crowd boxes; ``num_dets`` (C,).
    """
    num_gts = np.bincount(
        np.concatenate([s['gt_labels'] for s in samples]),
        minlength=num_classes)[:num_classes]
    num_dets = np.bincount(
        np.concatenate([s['labels'] for s in samples]),
        minlength=num_classes)[:num_classes]
    # pycocotools leaves classes without ground truth at -1 (skipped); with
    # no detection at all a class with ground truth has AP 0.
    ap = np.where(num_gts > 0, 0.0, np.nan)[None].repeat(len(iou_thrs), 0)
    coco_gt, coco_dt = _build_coco_pair(samples, num_classes)
    if coco_dt is None:
        return ap, num_gts, num_dets

    coco_eval = COCOeval(coco_gt, coco_dt, 'bbox')
    coco_eval.params.catIds = list(range(1, num_classes + 1))
    coco_eval.params.imgIds = list(range(1, len(samples) + 1))
    coco_eval.params.iouThrs = np.asarray(iou_thrs, dtype=np.float64)
    coco_eval.params.maxDets = [MAX_DETS]
    pycocotools_output = io.StringIO()
    with contextlib.redirect_stdout(pycocotools_output):
        coco_eval.evaluate()
        coco_eval.accumulate()
    MMLogger.get_current_instance().debug(pycocotools_output.getvalue())
    # precision: (T, recall points, classes, area ranges, max dets); area
    # range 0 is 'all'.
    precision = coco_eval.eval['precision'][:, :, :, 0, 0]
    has_gt = (precision > -1).all(axis=1)
    ap[has_gt] = precision.mean(axis=1)[has_gt]
    return ap, num_gts, num_dets
