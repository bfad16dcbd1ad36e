"""Objects stored as arrays, handed out as mmdet's per-object dicts.

A sample of the oriented parts stores its objects as three arrays: one small
pickle per image instead of a dict per object, which makes building the
dataset (and its serialized copy) several times cheaper. mmdet's
``LoadAnnotations`` and the tools read the per-object ``instances`` list;
:func:`instances_of` makes it when a sample is fetched.
"""
from typing import List

import numpy as np


def instances_of(polygons: np.ndarray, labels: np.ndarray,
                 ignore_flags: np.ndarray) -> List[dict]:
    """mmdet's ``instances`` of N objects.

    Args:
        polygons: (N, 8) float64 ``x1, y1, ..., x4, y4`` in pixels.
        labels: (N,) int64 class indices.
        ignore_flags: (N,) bool, True for an ignored box.

    Returns:
        list[dict]: N dicts ``bbox`` (8 floats), ``bbox_label`` (int),
        ``ignore_flag`` (0 or 1).
    """
    return [
        dict(bbox=bbox, bbox_label=label, ignore_flag=flag)
        for bbox, label, flag in zip(polygons.tolist(), labels.tolist(),
                                     ignore_flags.astype(int).tolist())
    ]
