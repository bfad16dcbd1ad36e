"""One task of a (multi-task) detector as an exportable graph.

``TaskGraph(image, image_size) -> (boxes, scores, labels)``: the shared
backbone (GridMoE layers included) and neck, the task head's pyramid
levels, its head and its decoding, up to the final NMS, which the runtime
does (``sm3det.deploy``). Supported heads: GFL (horizontal boxes) and
Oriented R-CNN (rotated boxes), SOI-Det's heads.
"""
from typing import NamedTuple

from mmdet.models.dense_heads import GFLHead
from mmdet.models.detectors import TwoStageDetector
from torch import Tensor, nn

from ..apis.tasks import task_detector
from .gfl_graph import GFLGraph
from .oriented_rcnn_graph import OrientedRCNNGraph

#: What the graph's outputs mean, by box type.
BOX_TYPES = ('hbox', 'rbox')


class PostProcess(NamedTuple):
    """The head's test-time settings after the graph (the runtime's job).

    Attributes:
        score_thr: detections need a score above it.
        nms_type: ``'nms'`` (horizontal) or ``'nms_rotated'``.
        iou_threshold: class-wise NMS threshold.
        max_per_img: detections kept per image, by score.
        min_bbox_size: boxes need w and h above it after rescaling
            (None: no such filter, as mmdet's ``multiclass_nms``).
    """
    score_thr: float
    nms_type: str
    iou_threshold: float
    max_per_img: int
    min_bbox_size: float = None


class TaskGraph(nn.Module):
    """``image (1, 3, H, W), image_size (2,) -> boxes, scores, labels``.

    Args:
        model: an ``SM3Det`` (the task picks its head) or a single-task
            mmdet / mmrotate detector, in eval mode.
        task: the task to export (a key of ``model.heads``).

    Attributes:
        box_type: ``'hbox'`` (x1, y1, x2, y2) or ``'rbox'`` (cx, cy, w, h,
            theta le90).
        postprocess: the head's :class:`PostProcess`.

    Raises:
        ValueError: a head this module cannot export (names the supported).
    """

    def __init__(self, model: nn.Module, task: str):
        super().__init__()
        self.model = model
        self.detector = task_detector(model, task)
        bbox_head = getattr(self.detector, 'bbox_head', None)
        if isinstance(bbox_head, GFLHead):
            self.head = GFLGraph(bbox_head)
            self.box_type = 'hbox'
            cfg = bbox_head.test_cfg
            min_size = cfg.get('min_bbox_size', -1)
            self.postprocess = PostProcess(cfg.score_thr,
                                           cfg.nms.get('type', 'nms'),
                                           cfg.nms.iou_threshold,
                                           cfg.max_per_img,
                                           min_size if min_size >= 0 else None)
        elif isinstance(self.detector, TwoStageDetector):
            try:
                self.head = OrientedRCNNGraph(self.detector)
            except ValueError as error:
                raise ValueError(f'task {task!r}: {error}') from None
            self.box_type = 'rbox'
            cfg = self.detector.roi_head.test_cfg
            self.postprocess = PostProcess(cfg.score_thr,
                                           cfg.nms.get('type', 'nms'),
                                           cfg.nms.iou_threshold,
                                           cfg.max_per_img)
        else:
            raise ValueError(
                f'task {task!r}: its {type(self.detector).__name__} with '
                f'{type(bbox_head).__name__} cannot be exported; the ONNX '
                'export covers GFL (horizontal boxes) and Oriented R-CNN '
                '(rotated boxes)')

    def forward(self, image: Tensor, image_size: Tensor):
        """Candidate detections of one image before the final NMS.

        Args:
            image: ``(1, 3, H, W)`` normalised, padded image.
            image_size: ``(2,)`` float32 height, width of the resized image
                before padding.

        Returns:
            boxes ``(M, 4 | 5)`` in input pixels, scores ``(M,)``, labels
            ``(M,)`` int64.
        """
        feats = self.model.extract_feat(image) if hasattr(self.model,
                                                          'heads') else image
        return self.head(self.detector.extract_feat(feats), image_size)
