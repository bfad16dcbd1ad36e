"""Do two sets of detections agree? (The exporter's self-check and the
parity tests: onnxruntime against PyTorch.)

Detections agree when they have the same count and can be paired one to
one with the same label, scores within ``score_tol`` and boxes within
``box_tol`` pixels. Pairing, not position: detections of equal score may
come in either order. Rotated boxes are compared by their corners, so
``theta`` and ``theta + pi`` (the same rectangle) agree.

One difference is not a disagreement: where two overlapping candidates of a
class have exactly the same score, NMS keeps whichever it visits first, and
PyTorch's CPU sort is not stable, so that order is arbitrary in PyTorch
itself. (It happens: RoIs wholly outside the image pool zeros and get
identical scores.) :func:`favour` puts the candidates that match the
reference first, so that the runtime's NMS (a stable sort) breaks such ties
as PyTorch did; scores that differ keep their order.
"""
from typing import List, NamedTuple

import numpy as np

from ..deploy.outputs import box_polygons

#: The issue's tolerances: pixels, score units.
BOX_TOL = 1e-2
SCORE_TOL = 1e-4


class Agreement(NamedTuple):
    """The outcome of :func:`compare_detections`.

    Attributes:
        ok: every detection paired within the tolerances, same count.
        count: detection counts (first, second).
        max_box_diff: largest box distance of a pair (pixels).
        max_score_diff: largest score difference of a pair.
        unpaired: indices into the first set left without a partner.
    """
    ok: bool
    count: tuple
    max_box_diff: float
    max_score_diff: float
    unpaired: List[int]

    def describe(self) -> str:
        return (f'{self.count[0]} vs {self.count[1]} detections, max box '
                f'difference {self.max_box_diff:.2e} px, max score '
                f'difference {self.max_score_diff:.2e}' +
                (f', {len(self.unpaired)} unpaired' if self.unpaired else ''))


def box_distances(box: np.ndarray, others: np.ndarray) -> np.ndarray:
    """Largest coordinate difference (pixels) of one box ``(D,)`` to each of
    ``others`` ``(N, D)``: corner distances for rotated boxes, taking the
    best of the corner orders a rectangle allows."""
    if box.shape[-1] == 4:
        return np.abs(others.astype(np.float64) - box).max(axis=1)
    corners = box_polygons(box[None])[0]
    other_corners = box_polygons(others)
    return np.min([
        np.abs(np.roll(other_corners, shift, axis=1) -
               corners).max(axis=(1, 2)) for shift in range(4)
    ],
                  axis=0)


def compare_detections(first,
                       second,
                       box_tol: float = BOX_TOL,
                       score_tol: float = SCORE_TOL) -> Agreement:
    """Pair ``first`` with ``second`` (each with ``boxes``, ``scores``,
    ``labels`` arrays), greedily by score, each to its nearest box of the
    same label within the tolerances."""
    boxes, scores, labels = _arrays(first)
    other_boxes, other_scores, other_labels = _arrays(second)
    free = np.ones(len(other_scores), bool)
    unpaired, box_diff, score_diff = [], 0.0, 0.0
    for i in np.argsort(-scores, kind='stable'):
        j, distance, score_gap = _partner(
            boxes[i], scores[i], labels[i],
            (other_boxes, other_scores, other_labels), free, box_tol,
            score_tol)
        if j is None:
            unpaired.append(int(i))
            continue
        free[j] = False
        box_diff = max(box_diff, distance)
        score_diff = max(score_diff, score_gap)
    ok = not unpaired and len(scores) == len(other_scores)
    return Agreement(ok, (len(scores), len(other_scores)), box_diff,
                     score_diff, unpaired)


def favour(candidates,
           reference,
           box_tol: float = BOX_TOL,
           score_tol: float = SCORE_TOL) -> np.ndarray:
    """A stable order of ``candidates`` (before NMS) that puts first those
    matching a ``reference`` detection (same label, score and box within
    the tolerances): the order to index the candidates with before an NMS
    that breaks ties by position."""
    boxes, scores, labels = _arrays(candidates)
    reference = _arrays(reference)
    free = np.ones(len(reference[1]), bool)
    matches = np.zeros(len(scores), bool)
    for i in np.argsort(-scores, kind='stable'):
        j = _partner(boxes[i], scores[i], labels[i], reference, free, box_tol,
                     score_tol)[0]
        if j is not None:
            free[j], matches[i] = False, True
    return np.argsort(~matches, kind='stable')


def _arrays(detections) -> tuple:
    return (np.asarray(detections.boxes), np.asarray(detections.scores),
            np.asarray(detections.labels))


def _partner(box, score, label, others, free, box_tol, score_tol):
    """The free detection of ``others`` nearest to ``box`` with the same
    label, score and box within the tolerances: ``(index or None, box
    distance, score difference)``."""
    other_boxes, other_scores, other_labels = others
    score_gap = np.abs(other_scores.astype(np.float64) - score)
    candidates = np.flatnonzero(free & (other_labels == label)
                                & (score_gap <= score_tol))
    if not len(candidates):
        return None, 0.0, 0.0
    distances = box_distances(box, other_boxes[candidates])
    best = distances.argmin()
    if distances[best] > box_tol:
        return None, 0.0, 0.0
    j = candidates[best]
    return int(j), float(distances[best]), float(score_gap[j])
