"""Run an exported task: an ONNX graph and its metadata, with numpy,
onnxruntime and OpenCV only.

The graph (``image (1, 3, Hp, Wp), image_size (2,) -> boxes, scores,
labels``) computes the candidate detections of one preprocessed image in
the pixels of its resized input; :class:`OnnxDetector` reads the image,
preprocesses it (:mod:`.preprocess`), runs the graph and finishes as the
PyTorch heads do (:mod:`.postprocess`): score threshold, rescaling to the
original image, optional size filter, class-wise NMS, ``max_per_img``.
Its sliding-window mode is ``SM3DetInferencer(sliding_window=True)``'s.
"""
import logging
import os
import os.path as osp
from typing import NamedTuple, Optional, Sequence, Tuple, Union

import numpy as np
import onnxruntime as ort

from ..imagery import (ImageWindows, SensorScaling, UnscaledImageError,
                       open_image)
from .metadata import meta_path, read_meta
from .postprocess import batched_nms, merge_patches, rescale_boxes
from .preprocess import cut_patch, preprocess, resolve_overlap, sliding_windows

logger = logging.getLogger(__name__)

#: The graph's input and output names.
INPUT_NAMES = ('image', 'image_size')
OUTPUT_NAMES = ('boxes', 'scores', 'labels')
#: Box columns by box type.
BOX_DIMS = {'hbox': 4, 'rbox': 5}

Image = Union[str, os.PathLike, np.ndarray, ImageWindows]


class Detections(NamedTuple):
    """Detections of one image, by decreasing score.

    Attributes:
        boxes: (N, 4) float32 x1, y1, x2, y2 (hbox) or (N, 5) cx, cy, w, h,
            angle (rbox; radians, le90), in original-image pixels.
        scores: (N,) float32.
        labels: (N,) int64 indices into the model's classes.
    """
    boxes: np.ndarray
    scores: np.ndarray
    labels: np.ndarray


class OnnxDetector:
    """One exported task of an SM3Det model, run by onnxruntime.

    Args:
        onnx_path: the graph; its metadata is ``<stem>.json`` beside it.
        providers: onnxruntime execution providers (default: CPU).
        num_threads: onnxruntime's intra-op threads (default: its own).

    Attributes:
        onnx_path: the graph's path.
        meta: the :class:`~.metadata.DeployMeta`.
        classes: the class names, by label.
        box_type: ``'hbox'`` or ``'rbox'``.
        scaling: how images that are not 8-bit are mapped to 0-255 (the
            metadata's ``preprocess.scaling``).
        session: the ``onnxruntime.InferenceSession``.

    Raises:
        FileNotFoundError: ``onnx_path`` does not exist.
        ValueError: missing or invalid metadata, or a graph whose inputs or
            outputs are not ``image``, ``image_size`` -> ``boxes``,
            ``scores``, ``labels`` (naming the file).
    """

    def __init__(self,
                 onnx_path: Union[str, os.PathLike],
                 providers: Optional[Sequence[str]] = None,
                 num_threads: Optional[int] = None) -> None:
        self.onnx_path = os.fspath(onnx_path)
        if not osp.isfile(self.onnx_path):
            raise FileNotFoundError(f'ONNX file {self.onnx_path} does not '
                                    'exist')
        self.meta = read_meta(self.onnx_path)
        self.classes = self.meta.classes
        self.box_type = self.meta.box_type
        self.scaling = SensorScaling(self.meta.preprocess['scaling'])
        options = ort.SessionOptions()
        if num_threads is not None:
            options.intra_op_num_threads = num_threads
        self.session = ort.InferenceSession(
            self.onnx_path,
            sess_options=options,
            providers=list(providers or ['CPUExecutionProvider']))
        self._check_interface()
        logger.debug('%s: task %s, %d classes, %s boxes, providers %s',
                     self.onnx_path, self.meta.task, len(self.classes),
                     self.box_type, self.session.get_providers())

    def _check_interface(self) -> None:
        """The graph's input and output names, and its box columns where
        the graph states them."""
        inputs = [i.name for i in self.session.get_inputs()]
        outputs = self.session.get_outputs()
        if sorted(inputs) != sorted(INPUT_NAMES) or sorted(
                o.name for o in outputs) != sorted(OUTPUT_NAMES):
            raise ValueError(
                f'{self.onnx_path} takes inputs {inputs} and gives outputs '
                f'{[o.name for o in outputs]}; an SM3Det graph takes '
                f'{list(INPUT_NAMES)} and gives {list(OUTPUT_NAMES)}')
        shape = next(o for o in outputs if o.name == 'boxes').shape
        box_dim = shape[-1] if shape else None  # may be symbolic or unknown
        if isinstance(box_dim, int) and box_dim != BOX_DIMS[self.box_type]:
            raise ValueError(
                f'{self.onnx_path} gives boxes of {box_dim} columns, but its '
                f'metadata says {self.box_type} ({BOX_DIMS[self.box_type]} '
                'columns)')

    # ------------------------------------------------------------ images
    def read(self, image: Image) -> ImageWindows:
        """``image`` opened for (window) reading as 8-bit BGR.

        Args:
            image: a path (``.npy``, TIFF or any format OpenCV reads) or a
                (H, W) / (H, W, 1) / (H, W, 3) BGR array; an image that is
                not 8-bit needs the metadata's ``preprocess.scaling``.

        Raises:
            FileNotFoundError: a path that does not exist.
            ValueError: an unreadable file, a shape or channel count other
                than those above, or an image that is not 8-bit while the
                metadata has no scaling (each naming what is allowed).
        """
        if isinstance(image, os.PathLike):
            image = os.fspath(image)
        try:
            return open_image(image, 3, scaling=self.scaling)
        except UnscaledImageError as e:
            raise UnscaledImageError(
                f'{e}; for this model, preprocess.scaling in '
                f'{meta_path(self.onnx_path)}') from None

    # ------------------------------------------------------------ running
    def __call__(self, image: Image) -> Detections:
        """Detections of the whole ``image`` (see :meth:`read` for what
        it may be), in its pixels."""
        return self.detect(self.read(image).read_all())

    def detect(self, image: np.ndarray) -> Detections:
        """Detections of a (H, W, 3) uint8 BGR array, in its pixels."""
        inputs, image_size, scale_factor = preprocess(image, self.meta)
        return self.postprocess(*self.raw(inputs, image_size), scale_factor)

    def raw(self, image: np.ndarray,
            image_size: np.ndarray) -> Tuple[np.ndarray, ...]:
        """Run the graph on preprocessed inputs.

        Args:
            image: (1, 3, Hp, Wp) float32, as :func:`.preprocess` gives.
            image_size: (2,) float32 [h, w] of the resized image.

        Returns:
            The candidates in resized-input pixels: boxes (M, 4|5)
            float32, scores (M,) float32, labels (M,) int64.

        Raises:
            ValueError: the graph's outputs have other shapes.
        """
        boxes, scores, labels = self.session.run(
            list(OUTPUT_NAMES), dict(image=image, image_size=image_size))
        count, box_dim = len(scores), BOX_DIMS[self.box_type]
        if boxes.shape != (count, box_dim) or scores.shape != (count, ) or (
                labels.shape != (count, )):
            raise ValueError(
                f'{self.onnx_path} gave boxes {boxes.shape}, scores '
                f'{scores.shape} and labels {labels.shape}; expected (M, '
                f'{box_dim}), (M,) and (M,)')
        return (boxes.astype(np.float32, copy=False),
                scores.astype(np.float32,
                              copy=False), labels.astype(np.int64, copy=False))

    def candidates(self, boxes: np.ndarray, scores: np.ndarray,
                   labels: np.ndarray,
                   scale_factor: Tuple[float, float]) -> Detections:
        """The head's steps after the graph up to NMS, in mmdet's order:
        scores above ``score_thr``, boxes rescaled to the original image,
        boxes not wider and higher than ``min_bbox_size`` dropped (if set).

        Args:
            boxes, scores, labels: the graph's candidates (:meth:`raw`).
            scale_factor: (w_scale, h_scale), resized / original pixels.
        """
        post = self.meta.postprocess
        keep = scores > post['score_thr']
        boxes = rescale_boxes(boxes[keep], scale_factor)
        scores, labels = scores[keep], labels[keep]
        if post.get('min_bbox_size') is not None:
            if self.box_type == 'hbox':
                widths, heights = (boxes[:, 2] - boxes[:, 0],
                                   boxes[:, 3] - boxes[:, 1])
            else:
                widths, heights = boxes[:, 2], boxes[:, 3]
            keep = (widths > post['min_bbox_size']) & (
                heights > post['min_bbox_size'])
            boxes, scores, labels = boxes[keep], scores[keep], labels[keep]
        return Detections(boxes, scores, labels)

    def nms(self, candidates: Detections) -> Detections:
        """Class-wise NMS and the best ``max_per_img`` of
        :meth:`candidates`' output (among equal scores the earlier
        candidate wins)."""
        boxes, scores, labels = candidates
        post = self.meta.postprocess
        keep = batched_nms(
            boxes,
            scores,
            labels,
            post['iou_threshold'],
            rotated=self.box_type == 'rbox')[:post['max_per_img']]
        return Detections(boxes[keep], scores[keep], labels[keep])

    def postprocess(self, boxes: np.ndarray, scores: np.ndarray,
                    labels: np.ndarray,
                    scale_factor: Tuple[float, float]) -> Detections:
        """:meth:`candidates`, then :meth:`nms` (arguments as there)."""
        return self.nms(self.candidates(boxes, scores, labels, scale_factor))

    # ------------------------------------------------------------ patches
    def default_patch_size(self) -> int:
        """The longer side of the test Resize scale."""
        return int(max(self.meta.preprocess['scale']))

    def predict_by_patches(
            self,
            image: Image,
            patch_size: Optional[int] = None,
            patch_overlap: Optional[int] = None,
            merge_iou_thr: Optional[float] = None) -> Detections:
        """Detections of an image of any size, patch by patch, as
        ``SM3DetInferencer(..., sliding_window=True)``.

        The image is read one window at a time where its format allows
        (arrays, ``.npy``, uncompressed TIFF; see
        ``sm3det/imagery/large_image.py``). Windows are mmrotate's
        ``slide_window``; a window reaching past the image is padded with
        0; each patch is detected as a whole image; the boxes are shifted
        into the image and merged by class-wise (rotated) NMS, as
        mmrotate's ``merge_results_by_nms``.

        Args:
            image: see :meth:`read`.
            patch_size: square patch side in pixels; default
                :meth:`default_patch_size`.
            patch_overlap: pixels shared by neighbouring patches; default a
                quarter of the patch size.
            merge_iou_thr: IoU threshold of the merging NMS; default the
                head's (``postprocess.iou_threshold``).

        Raises:
            ValueError: ``patch_overlap`` not in [0, patch_size), or an
                image :meth:`read` refuses.
        """
        patch_size = patch_size or self.default_patch_size()
        overlap = resolve_overlap(patch_size, patch_overlap)
        if merge_iou_thr is None:
            merge_iou_thr = self.meta.postprocess['iou_threshold']
        windows_image = self.read(image)
        windows = sliding_windows(windows_image.width, windows_image.height,
                                  patch_size, overlap)
        logger.debug('%s: %d patches of %d pixels', windows_image.name,
                     len(windows), patch_size)
        patches = [self.detect(cut_patch(windows_image, w)) for w in windows]
        boxes, scores, labels = zip(*patches)
        return Detections(*merge_patches(boxes, scores, labels, windows[:, :2],
                                         merge_iou_thr))
