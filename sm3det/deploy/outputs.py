"""What a deployment writes: JSON-ready predictions (the format of
``SM3DetInferencer.pred2dict``) and images with the detections drawn, with
numpy and OpenCV only."""
from typing import Optional, Sequence

import cv2
import numpy as np

from .metadata import BOX_FORMATS

#: BGR colours, cycled over the labels.
COLORS = ((0, 255, 0), (255, 128, 0), (0, 128, 255), (255, 0, 255),
          (0, 255, 255), (255, 255, 0), (128, 0, 255), (0, 0, 255))


def detections_to_dict(detections,
                       task: str,
                       box_type: str,
                       classes: Sequence[str],
                       img_id: str,
                       img_path: Optional[str] = None) -> dict:
    """One image's detections as ``SM3DetInferencer.pred2dict`` gives
    them (boxes in image pixels; the format named in ``box_format``)."""
    labels = np.asarray(detections.labels).tolist()
    return dict(
        img_id=img_id,
        img_path=img_path,
        task=task,
        box_type=box_type,
        box_format=BOX_FORMATS[box_type],
        bboxes=np.asarray(detections.boxes).tolist(),
        scores=np.asarray(detections.scores).tolist(),
        labels=labels,
        label_names=[classes[i] for i in labels])


def box_polygons(boxes: np.ndarray) -> np.ndarray:
    """``(N, 4)`` x1, y1, x2, y2 or ``(N, 5)`` cx, cy, w, h, theta (le90)
    -> ``(N, 4, 2)`` corners in pixels."""
    boxes = np.asarray(boxes, np.float64).reshape(len(boxes), -1)
    if boxes.shape[1] == 4:
        x1, y1, x2, y2 = boxes.T
        return np.stack([
            np.stack([x1, y1], -1),
            np.stack([x2, y1], -1),
            np.stack([x2, y2], -1),
            np.stack([x1, y2], -1)
        ], 1)
    cx, cy, w, h, theta = boxes.T
    along_w = np.stack([np.cos(theta), np.sin(theta)], -1) * (w / 2)[:, None]
    along_h = np.stack([-np.sin(theta), np.cos(theta)], -1) * (h / 2)[:, None]
    center = np.stack([cx, cy], -1)
    return np.stack([
        center - along_w - along_h, center + along_w - along_h,
        center + along_w + along_h, center - along_w + along_h
    ], 1)


def draw_detections(image: np.ndarray,
                    detections,
                    classes: Sequence[str],
                    score_thr: float = 0.3) -> np.ndarray:
    """A copy of the (H, W, 3) BGR ``image`` with the detections of score
    >= ``score_thr`` drawn: outline, class name and score."""
    canvas = np.ascontiguousarray(image).copy()
    scores = np.asarray(detections.scores)
    labels = np.asarray(detections.labels)
    polygons = box_polygons(detections.boxes)
    for polygon, score, label in zip(polygons, scores, labels):
        if score < score_thr:
            continue
        color = COLORS[int(label) % len(COLORS)]
        points = np.round(polygon).astype(np.int32)
        cv2.polylines(canvas, [points], True, color, 2)
        x, y = points[:, 0].min(), points[:, 1].min()
        cv2.putText(canvas, f'{classes[label]} {score:.2f}',
                    (int(x), max(int(y) - 3, 10)), cv2.FONT_HERSHEY_SIMPLEX,
                    0.4, color, 1, cv2.LINE_AA)
    return canvas
