"""Load-time checks on ground truth read from files.

A real data set of tens of thousands of files always holds a few bad ones. The
SOI-Det datasets check every image and every object once, when the annotation
files are read, and leave out what cannot be used instead of failing hours
into a run. Nothing is dropped silently: each problem is recorded with the
file it came from and reported through the mmengine logger.
"""
import itertools
import logging
from collections import Counter
from typing import Dict, List, Optional, Sequence, Tuple, Union

import cv2
import numpy as np
from mmengine.logging import print_log
from PIL import Image

from ..imagery import decode_image

#: Polygons smaller than this (pixels^2) carry no object: zero area.
MIN_POLYGON_AREA = 1.0
#: Bulk checks re-check a polygon one by one when its area is this close to
#: MIN_POLYGON_AREA (pixels^2): summation order changes the last bits.
AREA_ROUNDING_MARGIN = 1e-3


class SkipLog:
    """What a dataset left out while loading, and why.

    Args:
        dataset_name (str): the part's tag, used in the messages.
        max_listed (int): problems logged one by one (with their file); the
            rest are only counted, so that a badly broken folder does not
            flood the log.
    """

    def __init__(self, dataset_name: str, max_listed: int = 20):
        self.dataset_name = dataset_name
        self.max_listed = max_listed
        self.entries: List[Tuple[str, str, str]] = []  # (file, what, reason)

    def add(self, path: str, what: str, reason: str) -> None:
        """Record that ``what`` ('image' or 'object') of ``path`` was
        skipped."""
        self.entries.append((path, what, reason))
        if len(self.entries) <= self.max_listed:
            print_log(
                f'[{self.dataset_name}] {path}: skipped {what}: {reason}',
                logger='current',
                level=logging.WARNING)

    def count(self, what: str) -> int:
        return sum(1 for _, w, _ in self.entries if w == what)

    def report(self, num_images: int, num_objects: int) -> None:
        """Log one summary line: kept images/objects and skips by reason."""
        message = (f'[{self.dataset_name}] loaded {num_images} images with '
                   f'{num_objects} objects')
        if self.entries:
            reasons = Counter(f'{what}: {reason.split(" (")[0]}'
                              for _, what, reason in self.entries)
            detail = '; '.join(f'{n} x {r}' for r, n in reasons.most_common())
            message += (f'; skipped {self.count("image")} images and '
                        f'{self.count("object")} objects ({detail})')
            if len(self.entries) > self.max_listed:
                message += (f'; only the first {self.max_listed} were '
                            'listed above')
        print_log(
            message,
            logger='current',
            level=logging.WARNING if self.entries else logging.INFO)


def image_size_problem(
        path: str) -> Tuple[Optional[Tuple[int, int]], Optional[str]]:
    """Read an image's (width, height) from its header, without decoding it.

    Returns ``((width, height), None)``, or ``(None, reason)`` when the file is
    missing or not a readable image.
    """
    try:
        with Image.open(path) as img:
            return img.size, None
    except FileNotFoundError:
        return None, 'image file not found'
    except Exception as e:  # noqa: BLE001 - any decoder error means unreadable
        pil_error = f'{type(e).__name__}: {e}'
    # PIL reads no float64 or 3-channel float TIFF; the sensor loader does.
    try:
        with open(path, 'rb') as f:
            height, width = decode_image(f.read(), path).shape[:2]
    except ValueError:
        return None, f'unreadable image ({pil_error})'
    return (width, height), None


def polygon_area(points: np.ndarray) -> float:
    """Area (pixels^2) of a simple polygon given as (N, 2) points
    (shoelace)."""
    x, y = points[:, 0], points[:, 1]
    return 0.5 * abs(
        float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))))


def polygon_problem(coords: Sequence[float],
                    width: Optional[int] = None,
                    height: Optional[int] = None) -> Optional[str]:
    """Why a polygon cannot be ground truth, or None when it can.

    Args:
        coords: flat ``x1, y1, ..., x4, y4`` in pixels (DOTA's quadrilateral).
        width, height: the image size; when given, a polygon lying entirely
            outside the image is a problem (one that overlaps it is kept).
    """
    points = np.asarray(coords, dtype=np.float64).ravel()
    if points.size != 8:
        return f'polygon with {points.size / 2:g} points (needs 4)'
    if not np.isfinite(points).all():
        return 'polygon with non-finite coordinates'
    points = points.reshape(-1, 2)
    if polygon_area(points) < MIN_POLYGON_AREA:
        coords = ' '.join(f'{v:g}' for v in points.ravel())
        return f'polygon of zero area ({coords})'
    if width is not None and height is not None and (
            points[:, 0].max() <= 0 or points[:, 1].max() <= 0
            or points[:, 0].min() >= width or points[:, 1].min() >= height):
        return f'polygon entirely outside the {width}x{height} image'
    return None


def polygon_problems(
        polygons: np.ndarray,
        width: Union[None, int, np.ndarray] = None,
        height: Union[None, int, np.ndarray] = None,
        coords: Optional[Sequence[Sequence[float]]] = None) -> Dict[int, str]:
    """:func:`polygon_problem` of many polygons at once.

    Args:
        polygons: (N, 8) float64 quadrilaterals in pixels; rows of NaN for
            objects without 8 coordinates.
        width, height: the image size as for :func:`polygon_problem`, one
            for all rows or (N,) int arrays, one per row.
        coords: each object's coordinates as read, any number of them
            (default: the rows of ``polygons``).

    Returns:
        dict: row -> reason, in row order, for the rows that cannot be
        ground truth (the same reasons as :func:`polygon_problem`).
    """
    x, y = polygons[:, 0::2], polygons[:, 1::2]
    next_corner = [1, 2, 3, 0]
    with np.errstate(invalid='ignore'):  # inf - inf: flagged below anyway
        area = 0.5 * np.abs((x * y[:, next_corner]).sum(1) -
                            (y * x[:, next_corner]).sum(1))
        suspect = ~np.isfinite(polygons).all(1) | (
            area < MIN_POLYGON_AREA + AREA_ROUNDING_MARGIN)
        if width is not None and height is not None:
            suspect |= ((x.max(1) <= 0) | (y.max(1) <= 0) | (x.min(1) >= width)
                        | (y.min(1) >= height))
    if width is None or height is None:
        widths = heights = [None] * len(polygons)
    else:
        widths = np.broadcast_to(width, len(polygons)).tolist()
        heights = np.broadcast_to(height, len(polygons)).tolist()
    problems = {}
    for i in np.flatnonzero(suspect).tolist():
        problem = polygon_problem(polygons[i] if coords is None else coords[i],
                                  widths[i], heights[i])
        if problem:
            problems[i] = problem
    return problems


def narrow_polygons(polygons: np.ndarray, min_side: float) -> np.ndarray:
    """Which polygons have a minimum-area rectangle with a side under
    ``min_side`` pixels, the test of the authors' loader (mmrotate 0.x's
    ``poly2obb_np``: ``cv2.minAreaRect`` of float32 points).

    The rectangle's shorter side is at least the polygon's width, the least
    extent across one of the directions through two of its corners; only
    polygons whose width is near ``min_side`` go through ``cv2``.

    Args:
        polygons: (N, 8) finite quadrilaterals in pixels.
        min_side: pixels.

    Returns:
        np.ndarray: (N,) bool.
    """
    points = polygons.reshape(-1, 4, 2)
    width = np.full(len(points), np.inf)
    for a, b in itertools.combinations(range(4), 2):
        direction = points[:, b] - points[:, a]
        length = np.linalg.norm(direction, axis=1)
        normal = np.stack([-direction[:, 1], direction[:, 0]], 1)
        offsets = np.einsum('nkd,nd->nk', points, normal)
        with np.errstate(invalid='ignore', divide='ignore'):
            extent = np.ptp(offsets, axis=1) / length
        width = np.fmin(width, extent)  # NaN: two corners coincide
    narrow = np.zeros(len(points), bool)
    # cv2 works in float32: a margin for its rounding
    for i in np.flatnonzero(width < min_side + 1e-3).tolist():
        _, (w, h), _ = cv2.minAreaRect(points[i].astype(np.float32))
        narrow[i] = w < min_side or h < min_side
    return narrow


def hbox_problem(x: float,
                 y: float,
                 w: float,
                 h: float,
                 width: Optional[int] = None,
                 height: Optional[int] = None) -> Optional[str]:
    """Why a COCO ``[x, y, w, h]`` box cannot be ground truth, or None."""
    if not np.isfinite([x, y, w, h]).all():
        return 'box with non-finite coordinates'
    if w <= 0 or h <= 0:
        return f'box of zero area ([{x:g}, {y:g}, {w:g}, {h:g}])'
    if width is not None and height is not None and (x + w <= 0 or y + h <= 0
                                                     or x >= width
                                                     or y >= height):
        return f'box entirely outside the {width}x{height} image'
    return None
