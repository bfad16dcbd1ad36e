"""Training streams that resume exactly and instantly.

Two properties of the data side make a resumed run equal an uninterrupted one
without reading the finished iterations' batches again:

1. The sampler starts at a position: ``set_start(n)`` makes its next
   ``__iter__`` begin after the first ``n`` indices of this rank's stream
   (``ResumableIterBasedTrainLoop`` calls it on resume), computing the
   skipped indices but loading nothing.
2. A sample's augmentation does not depend on which data-loader worker draws
   it or on what that worker drew before (worker processes and their random
   state do not survive an interruption): the samplers yield ``SeededIndex``
   values, ints that carry a seed derived from the sampler's seed, the rank
   and the draw's position in the stream, and ``SeededConcatDataset``
   prepares each sample with Python's, NumPy's and torch's generators seeded
   by it. The same stream therefore also gives the same batches with any
   number of workers.
"""
import itertools
from typing import Iterator

import numpy as np
from mmdet.datasets.samplers import MultiSourceSampler
from mmengine.dataset import ConcatDataset
from mmrotate.registry import DATA_SAMPLERS, DATASETS

from ..utils.random_state import seeded


def draw_seed(seed: int, rank: int, position: int) -> int:
    """The seed of the ``position``-th draw of rank ``rank``'s stream; an int
    in [0, 2**32), well mixed even for neighbouring positions."""
    entropy = [seed % 2**63, rank, position]
    return int(np.random.SeedSequence(entropy).generate_state(1)[0])


class SeededIndex(int):
    """A dataset index that carries the seed of its draw (``.seed``); any
    dataset takes it as the plain int."""

    def __new__(cls, index: int, seed: int):
        obj = super().__new__(cls, index)
        obj.seed = seed
        return obj

    def __reduce__(self):  # sent to the data-loader workers by pickle
        return SeededIndex, (int(self), self.seed)


class ResumableSamplerMixin:
    """``set_start`` and seeded draws for an infinite sampler that has
    ``seed`` and ``rank`` attributes."""

    start = 0

    def set_start(self, start: int) -> None:
        """Make the next ``__iter__`` begin after the first ``start`` indices
        of this rank's stream (``start`` = iterations done x batch size)."""
        if not isinstance(start, int) or start < 0:
            raise ValueError(f'start must be a non-negative int, got {start}')
        self.start = start

    def _seeded_from_start(self,
                           indices: Iterator[int]) -> Iterator[SeededIndex]:
        for position, index in enumerate(
                itertools.islice(indices, self.start, None), self.start):
            yield SeededIndex(index, draw_seed(self.seed, self.rank, position))


@DATA_SAMPLERS.register_module()
class ResumableMultiSourceSampler(ResumableSamplerMixin, MultiSourceSampler):
    """mmdet's ``MultiSourceSampler`` (every batch split over the sources of
    a ``ConcatDataset`` by ``source_ratio``, e.g. SOI-Det's 2:1:1) that
    starts at a position and yields ``SeededIndex`` values.

    Same arguments and the same index stream as ``MultiSourceSampler``.
    """

    def __iter__(self) -> Iterator[SeededIndex]:
        # mmdet makes the per-source orders once, in __init__, so that a
        # second __iter__ would continue them; a stream must restart them to
        # be a function of its start.
        self.source2inds = {
            source: self._indices_of_rank(len(part))
            for source, part in enumerate(self.dataset.datasets)
        }
        return self._seeded_from_start(super().__iter__())


@DATASETS.register_module()
class SeededConcatDataset(ConcatDataset):
    """mmengine's ``ConcatDataset`` that prepares the sample of a
    ``SeededIndex`` (load, augment) with Python's, NumPy's and torch's CPU
    generators seeded by its seed, and gives the caller its random state
    back; a plain int index is served as by ``ConcatDataset``."""

    def __getitem__(self, idx: int) -> dict:
        seed = getattr(idx, 'seed', None)
        if seed is None:
            return super().__getitem__(idx)
        with seeded(seed):
            return super().__getitem__(idx)
