"""The graph's inputs from an 8-bit BGR image, and the patches of the
sliding-window mode: numpy and OpenCV only.

:func:`preprocess` gives, to the bit, what the task's test pipeline (mmdet
``Resize``, which calls mmcv's ``imrescale`` / ``imresize``) and the model's
``DetDataPreprocessor`` (BGR -> RGB, ``(x - mean) / std`` in float32,
bottom/right padding to a multiple of ``pad_size_divisor`` with
``pad_value``) give. :func:`sliding_windows` and :func:`cut_patch` are
mmrotate's ``slide_window`` and ``LoadPatchFromNDArray``.
"""
import math
from itertools import product
from typing import Optional, Tuple

import cv2
import numpy as np

from .metadata import DeployMeta

#: mmcv's interpolation names -> OpenCV flags.
CV2_INTERPOLATIONS = {
    'nearest': cv2.INTER_NEAREST,
    'bilinear': cv2.INTER_LINEAR,
    'bicubic': cv2.INTER_CUBIC,
    'area': cv2.INTER_AREA,
    'lanczos': cv2.INTER_LANCZOS4,
}
#: mmrotate ``slide_window``'s default: windows with less of the image
#: than this share of their area are dropped.
IMAGE_RATE_THR = 0.6


def resized_size(width: int, height: int, scale: Tuple[int, int],
                 keep_ratio: bool) -> Tuple[int, int]:
    """(new width, new height) of mmdet's ``Resize(scale, keep_ratio)``.

    With ``keep_ratio``, mmcv's ``rescale_size``: the largest size within
    ``scale`` (long side <= max(scale), short side <= min(scale)), each
    side ``int(side * factor + 0.5)``; else ``scale`` itself.
    """
    if not keep_ratio:
        return int(scale[0]), int(scale[1])
    factor = min(
        max(scale) / max(height, width),
        min(scale) / min(height, width))
    return int(width * float(factor) + 0.5), int(height * float(factor) + 0.5)


def resize(image: np.ndarray, pre: dict) -> Tuple[np.ndarray, tuple]:
    """mmdet ``Resize`` of the test pipeline.

    Args:
        image: (H, W, 3) array.
        pre: the metadata's ``preprocess`` dict.

    Returns:
        The resized (h, w, 3) image and the ``scale_factor`` mmdet records,
        (w / W, h / H).

    Raises:
        ValueError: a side of the image would be resized to 0 pixels.
    """
    height, width = image.shape[:2]
    size = resized_size(width, height, pre['scale'], pre['keep_ratio'])
    if min(size) == 0:
        raise ValueError(f'an image of {width} x {height} pixels is resized '
                         f'to {size[0]} x {size[1]} at the test scale '
                         f'{pre["scale"]}: too thin to detect in')
    resized = cv2.resize(
        image, size, interpolation=CV2_INTERPOLATIONS[pre['interpolation']])
    return resized, (size[0] / width, size[1] / height)


def normalize_and_pad(image: np.ndarray, pre: dict) -> np.ndarray:
    """mmdet ``DetDataPreprocessor`` of one image.

    Args:
        image: (h, w, 3) BGR array (uint8).
        pre: the metadata's ``preprocess`` dict.

    Returns:
        (1, 3, Hp, Wp) float32: channels in RGB order if ``bgr_to_rgb``,
        ``(x - mean) / std``, padded at the bottom and right with
        ``pad_value`` to multiples of ``pad_size_divisor``.
    """
    chw = image.transpose(2, 0, 1)
    if pre['bgr_to_rgb']:
        chw = chw[::-1]
    mean = np.asarray(pre['mean'], np.float32)[:, None, None]
    std = np.asarray(pre['std'], np.float32)[:, None, None]
    normalized = (chw.astype(np.float32) - mean) / std
    divisor = pre['pad_size_divisor']
    height, width = image.shape[:2]
    padded = np.full((1, 3, math.ceil(height / divisor) * divisor,
                      math.ceil(width / divisor) * divisor),
                     pre['pad_value'],
                     dtype=np.float32)
    padded[0, :, :height, :width] = normalized
    return padded


def preprocess(image: np.ndarray,
               meta: DeployMeta) -> Tuple[np.ndarray, np.ndarray, tuple]:
    """The graph's inputs for one image.

    Args:
        image: (H, W, 3) uint8 BGR image.
        meta: the model's metadata.

    Returns:
        ``image`` (1, 3, Hp, Wp) float32, ``image_size`` (2,) float32
        [h, w] of the resized image before padding, and ``scale_factor``
        (w_scale, h_scale): resized / original pixels.

    Raises:
        ValueError: ``image`` is not a (H, W, 3) uint8 array, or so thin
            that a side is resized to 0 pixels.
    """
    if not (isinstance(image, np.ndarray) and image.dtype == np.uint8
            and image.ndim == 3 and image.shape[2] == 3
            and min(image.shape[:2]) > 0):
        got = (f'{image.dtype} {image.shape}'
               if isinstance(image, np.ndarray) else type(image).__name__)
        raise ValueError('preprocess takes a (H, W, 3) uint8 BGR image, '
                         f'got {got}')
    resized, scale_factor = resize(image, meta.preprocess)
    image_size = np.array(resized.shape[:2], dtype=np.float32)
    return normalize_and_pad(resized, meta.preprocess), image_size, \
        scale_factor


def sliding_windows(width: int, height: int, patch_size: int,
                    overlap: int) -> np.ndarray:
    """mmrotate's ``slide_window(width, height, [patch_size],
    [patch_size - overlap])``.

    Windows start every ``patch_size - overlap`` pixels, the last one of a
    row (column) moved back to end at the image's edge; an image side
    shorter than ``patch_size`` has one window, reaching past the image.
    Windows with less than :data:`IMAGE_RATE_THR` of their area in the
    image are dropped (all but the fullest, when none has that much).
    Unlike mmrotate's, it takes ``overlap`` 0 (tiles).

    Returns:
        (P, 4) int64 x1, y1, x2, y2 in image pixels, x-major order.
    """
    step = patch_size - overlap

    def starts(length: int) -> list:
        count = 1 if length <= patch_size else math.ceil(
            (length - patch_size) / step + 1)
        found = [step * i for i in range(count)]
        if len(found) > 1 and found[-1] + patch_size > length:
            found[-1] = length - patch_size
        return found

    start = np.array(
        list(product(starts(width), starts(height))), dtype=np.int64)
    windows = np.concatenate([start, start + patch_size], axis=1)
    inside = windows.copy()
    inside[:, 0::2] = np.clip(inside[:, 0::2], 0, width)
    inside[:, 1::2] = np.clip(inside[:, 1::2], 0, height)
    rates = ((inside[:, 2] - inside[:, 0]) * (inside[:, 3] - inside[:, 1]) /
             (patch_size * patch_size))
    if not (rates >= IMAGE_RATE_THR).any():
        rates[rates == rates.max()] = 1
    return windows[rates >= IMAGE_RATE_THR]


def resolve_overlap(patch_size: int, overlap: Optional[int]) -> int:
    """The sliding-window overlap: ``overlap``, by default a quarter of
    ``patch_size``.

    Raises:
        ValueError: an overlap outside [0, patch_size).
    """
    overlap = patch_size // 4 if overlap is None else overlap
    if not 0 <= overlap < patch_size:
        raise ValueError(f'patch_overlap must be in [0, patch_size = '
                         f'{patch_size}), got {overlap}')
    return overlap


def cut_patch(image, window) -> np.ndarray:
    """mmrotate's ``LoadPatchFromNDArray``: the window's pixels, padded
    with 0 where the window reaches past the image.

    Args:
        image: (H, W, 3) array, or anything sliced as ``image[y1:y2,
            x1:x2]`` with a ``shape`` (an ``ImageWindows``).
        window: x1, y1, x2, y2 in image pixels.

    Returns:
        (y2 - y1, x2 - x1, 3) array.
    """
    height, width = image.shape[:2]
    x1, y1, x2, y2 = (int(v) for v in window)
    patch = image[max(y1, 0):min(y2, height), max(x1, 0):min(x2, width)]
    top, left = max(y1, 0) - y1, max(x1, 0) - x1
    bottom, right = y2 - min(y2, height), x2 - min(x2, width)
    if top or left or bottom or right:
        patch = cv2.copyMakeBorder(
            patch, top, bottom, left, right, cv2.BORDER_CONSTANT, value=0)
    return patch
