"""Shared test data of the SOI-Det evaluation tests."""
import math

import numpy as np
import pytest


def _random_rotated_set(rng, num_images, num_classes):
    """Images of jittered true boxes, false alarms and ignored objects."""

    def boxes(n):
        return np.stack([
            rng.uniform(20, 180, n),
            rng.uniform(20, 180, n),
            rng.uniform(8, 40, n),
            rng.uniform(8, 40, n),
            rng.uniform(-math.pi / 2, math.pi / 2, n)
        ], 1)

    images = []
    for _ in range(num_images):
        gts = boxes(rng.integers(1, 7))
        gt_labels = rng.integers(0, num_classes, len(gts))
        ignored = boxes(rng.integers(0, 2))
        ignored_labels = rng.integers(0, num_classes, len(ignored))
        # Most objects (ignored ones too) are found, a few with a wrong class.
        targets = np.concatenate([gts, ignored])
        found = rng.random(len(targets)) < 0.85
        hits = targets[found] + rng.normal(
            0, 1, (found.sum(), 5)) * [3, 3, 2, 2, 0.1]
        hit_labels = np.where(
            rng.random(found.sum()) < 0.9,
            np.concatenate([gt_labels, ignored_labels])[found],
            rng.integers(0, num_classes, found.sum()))
        false_alarms = boxes(rng.integers(0, 4))
        dets = np.concatenate([hits, false_alarms])
        images.append(
            dict(
                dets=dets.astype(np.float32),
                scores=rng.random(len(dets)).astype(np.float32),
                labels=np.concatenate([
                    hit_labels,
                    rng.integers(0, num_classes, len(false_alarms))
                ]),
                gts=gts.astype(np.float32),
                gt_labels=gt_labels,
                ignored=ignored.astype(np.float32),
                ignored_labels=ignored_labels))
    return images


@pytest.fixture
def random_rotated_set():
    """``f(rng, num_images, num_classes)`` -> list of per-image dicts of
    float32 ``dets`` (N, 5), ``scores``, ``labels``, ``gts``, ``gt_labels``,
    ``ignored``, ``ignored_labels`` (cx, cy, w, h, angle boxes, px)."""
    return _random_rotated_set


def _random_horizontal_set(rng, num_images, num_classes):
    """Like the rotated set, with x1, y1, x2, y2 boxes (ignored = crowd)."""

    def boxes(n):
        corner = rng.uniform(0, 150, (n, 2))
        return np.concatenate([corner, corner + rng.uniform(8, 50, (n, 2))],
                              axis=1)

    images = []
    for _ in range(num_images):
        gts = boxes(rng.integers(1, 7))
        gt_labels = rng.integers(0, num_classes, len(gts))
        ignored = boxes(rng.integers(0, 2))
        ignored_labels = rng.integers(0, num_classes, len(ignored))
        found = rng.random(len(gts)) < 0.85
        hits = gts[found] + rng.normal(0, 3, (found.sum(), 4))
        false_alarms = boxes(rng.integers(0, 4))
        dets = np.concatenate([hits, false_alarms])
        images.append(
            dict(
                dets=dets.astype(np.float32),
                scores=rng.random(len(dets)).astype(np.float32),
                labels=np.concatenate([
                    gt_labels[found],
                    rng.integers(0, num_classes, len(false_alarms))
                ]),
                gts=gts.astype(np.float32),
                gt_labels=gt_labels,
                ignored=ignored.astype(np.float32),
                ignored_labels=ignored_labels))
    return images


@pytest.fixture
def random_horizontal_set():
    """``f(rng, num_images, num_classes)`` -> per-image dicts as above, with
    (N, 4) x1, y1, x2, y2 boxes."""
    return _random_horizontal_set
