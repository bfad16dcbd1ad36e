"""Single-dataset batches for the UniDet baseline of SM3Det's Table 1 (Zhou,
Koltun and Kraehenbuehl, "Simple multi-dataset detection", CVPR 2022).

UniDet's partitioned detector trains a shared backbone with dataset-specific
outputs on samples drawn dataset-balanced (each dataset with probability
given by its ratio, whatever its size; equal ratios by default) and grouped
so that every GPU's batch comes from one dataset: each step a GPU trains one
dataset's head, and the global batch over the GPUs mixes datasets. SM3Det's
simple joint training instead draws images uniformly from the concatenated
datasets (datasets in proportion to their size) into mixed batches.
"""
import itertools
from typing import Iterator, List, Optional, Sequence, Sized

import torch
from mmengine.dist import get_dist_info, sync_random_seed
from mmrotate.registry import DATA_SAMPLERS
from torch.utils.data import Sampler

from .resumable_sampling import ResumableSamplerMixin, SeededIndex


@DATA_SAMPLERS.register_module()
class SingleSourceSampler(ResumableSamplerMixin, Sampler):
    """Infinite sampler whose every ``batch_size`` indices share one source.

    For each batch the source (sub-dataset of a ``ConcatDataset``) is drawn
    with probability ``source_ratio[i] / sum(source_ratio)``; the batch then
    takes the next ``batch_size`` indices of that source's endless shuffled
    order. Distributed: every source's order is split over the ranks (no
    image twice in one pass) and every rank draws its own sources, so ranks
    train different datasets in the same step.

    Resumable (``set_start``) and seeded: yields ``SeededIndex`` values (see
    ``sm3det.datasets.resumable_sampling``).

    Args:
        dataset (Sized): A ``ConcatDataset`` (has ``cumulative_sizes``).
        batch_size (int): The data loader's per-GPU batch size.
        source_ratio (Sequence[float], optional): Sampling weight of each
            source. None: equal weights (UniDet's dataset-balanced default).
        shuffle (bool): Shuffle every source's order. Defaults to True.
        seed (int, optional): Random seed, shared by the ranks; None: a
            random seed synchronised over the ranks.
    """

    def __init__(self,
                 dataset: Sized,
                 batch_size: int,
                 source_ratio: Optional[Sequence[float]] = None,
                 shuffle: bool = True,
                 seed: Optional[int] = None):
        if not hasattr(dataset, 'cumulative_sizes'):
            raise TypeError('SingleSourceSampler needs a ConcatDataset, got '
                            f'{type(dataset).__name__}')
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f'batch_size must be a positive int, got '
                             f'{batch_size}')
        num_sources = len(dataset.cumulative_sizes)
        if source_ratio is None:
            source_ratio = [1.] * num_sources
        if len(source_ratio) != num_sources or min(source_ratio) < 0 or \
                sum(source_ratio) <= 0:
            raise ValueError(f'source_ratio needs {num_sources} non-negative '
                             f'weights, not all 0; got {source_ratio}')
        self.rank, self.world_size = get_dist_info()
        self.dataset = dataset
        self.batch_size = batch_size
        self.offsets = [0] + list(dataset.cumulative_sizes[:-1])
        self.sizes = [len(part) for part in dataset.datasets]
        empty = [
            i for i, (size, ratio) in enumerate(zip(self.sizes, source_ratio))
            if size == 0 and ratio > 0
        ]
        if empty:
            raise ValueError(f'sources {empty} are empty but have a '
                             'positive source_ratio')
        self.source_probs = torch.tensor(source_ratio, dtype=torch.float64)
        self.shuffle = shuffle
        self.seed = sync_random_seed() if seed is None else seed

    def _source_order(self, source: int) -> Iterator[int]:
        """This rank's share of the endless order of one source's indices
        (indices into the concatenated dataset)."""
        generator = torch.Generator().manual_seed(self.seed + source)
        size = self.sizes[source]

        def endless():
            while True:
                order = torch.randperm(size, generator=generator) \
                    if self.shuffle else torch.arange(size)
                yield from (self.offsets[source] + order).tolist()

        return itertools.islice(endless(), self.rank, None, self.world_size)

    def __iter__(self) -> Iterator[SeededIndex]:
        return self._seeded_from_start(self._indices())

    def _indices(self) -> Iterator[int]:
        orders: List[Iterator[int]] = [
            self._source_order(source) for source in range(len(self.sizes))
        ]
        # Per rank, so that ranks draw different sources for the same step.
        generator = torch.Generator().manual_seed(self.seed + len(self.sizes) +
                                                  self.rank)
        while True:
            source = int(
                torch.multinomial(self.source_probs, 1, generator=generator))
            yield from itertools.islice(orders[source], self.batch_size)

    def __len__(self) -> int:
        return len(self.dataset)
