"""Training-time filter of boxes that became too small or left the image."""
from typing import Optional

from mmcv.transforms import BaseTransform
from mmrotate.registry import TRANSFORMS


@TRANSFORMS.register_module()
class FilterSmallOrOutsideBoxes(BaseTransform):
    """Drop the boxes with a side of ``min_side`` pixels or less or whose
    centre is not strictly inside the image; no box left: ``None``.

    The authors' random rotation (mmrotate 0.x's ``PolyRandomRotate``) ends
    with this filter on every sample, rotated or not; put it after
    ``RandomRotate`` to reproduce it (docs/authors_protocol.md). A ``None``
    makes mmengine's ``BaseDataset.__getitem__`` prepare another image of
    the same dataset instead (in training; each part of a ``ConcatDataset``
    draws its replacements from itself).

    Required keys: ``img_shape``, ``gt_bboxes`` (any box type with
    ``widths``, ``heights`` and ``centers``: rotated ``w``/``h`` for
    ``RotatedBoxes``). Modified keys: ``gt_bboxes``, ``gt_bboxes_labels``,
    ``gt_ignore_flags``.

    Args:
        min_side (float): pixels; the authors' value is 5.
    """

    def __init__(self, min_side: float = 5.) -> None:
        self.min_side = min_side

    def transform(self, results: dict) -> Optional[dict]:
        boxes = results['gt_bboxes']
        height, width = results['img_shape'][:2]
        centres = boxes.centers.numpy()
        keep = ((boxes.widths > self.min_side).numpy()
                & (boxes.heights > self.min_side).numpy()
                & (centres[:, 0] > 0) & (centres[:, 0] < width)
                & (centres[:, 1] > 0) & (centres[:, 1] < height))
        if not keep.any():
            return None
        if not keep.all():
            for key in ('gt_bboxes', 'gt_bboxes_labels', 'gt_ignore_flags'):
                if key in results:
                    results[key] = results[key][keep]
        return results

    def __repr__(self) -> str:
        return f'{type(self).__name__}(min_side={self.min_side})'
