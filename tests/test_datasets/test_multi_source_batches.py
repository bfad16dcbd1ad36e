"""2:1:1 batches: mmdet's MultiSourceSampler over mmengine's ConcatDataset of
the parts."""
import itertools
from unittest import mock

import pytest
from mmdet.datasets.samplers import MultiSourceSampler
from mmengine.dataset import ConcatDataset
from mmengine.runner import Runner
from mmrotate.registry import DATASETS
from torch.utils.data import Dataset


class Sized(Dataset):
    """A stand-in part: only its length matters to the sampler."""

    def __init__(self, length):
        self.length = length

    def __len__(self):
        return self.length

    def __getitem__(self, index):
        return index


class Parts:
    """The cumulative_sizes/datasets interface of a ConcatDataset, for given
    lengths."""

    def __init__(self, *lengths):
        self.datasets = [Sized(n) for n in lengths]
        self.cumulative_sizes = list(itertools.accumulate(lengths))

    def __len__(self):
        return self.cumulative_sizes[-1]

    def source_of(self, index):
        return sum(index >= c for c in self.cumulative_sizes)


def batches(sampler, batch_size, count):
    indices = list(itertools.islice(iter(sampler), batch_size * count))
    return [
        indices[i:i + batch_size] for i in range(0, len(indices), batch_size)
    ]


@pytest.mark.parametrize('lengths, batch_size, ratio, per_batch', [
    ((37, 11, 5), 4, [2, 1, 1], [2, 1, 1]),
    ((9, 20), 6, [1, 2], [2, 4]),
    ((7, 8, 9, 10), 8, [1, 1, 1, 1], [2, 2, 2, 2]),
])
def test_every_batch_follows_the_source_ratio(lengths, batch_size, ratio,
                                              per_batch):
    parts = Parts(*lengths)
    sampler = MultiSourceSampler(
        parts, batch_size=batch_size, source_ratio=ratio, seed=0)
    # many passes over the small parts
    for batch in batches(sampler, batch_size, 200):
        sources = [parts.source_of(i) for i in batch]
        assert [sources.count(s) for s in range(len(lengths))] == per_batch


def sampler_on_rank(parts, rank, world_size, seed):
    where = 'mmdet.datasets.samplers.multi_source_sampler.get_dist_info'
    with mock.patch(where, return_value=(rank, world_size)):
        return MultiSourceSampler(
            parts, batch_size=4, source_ratio=[2, 1, 1], seed=seed)


def test_ranks_see_different_samples_reproducibly():
    parts = Parts(40, 20, 20)
    # 5 batches per rank: 10 of the 20 samples of parts 1 and 2 each.
    rank0 = sum(batches(sampler_on_rank(parts, 0, 2, seed=7), 4, 5), [])
    rank1 = sum(batches(sampler_on_rank(parts, 1, 2, seed=7), 4, 5), [])
    assert not set(rank0) & set(rank1)
    assert rank0 == sum(
        batches(sampler_on_rank(parts, 0, 2, seed=7), 4, 5), [])
    assert rank0 != sum(
        batches(sampler_on_rank(parts, 0, 2, seed=8), 4, 5), [])


def test_concatenated_parts_keep_their_own_metainfo(mini_config):
    dataset = DATASETS.build(mini_config.train_dataloader.dataset)
    assert isinstance(dataset, ConcatDataset)
    assert [d.metainfo['dataset_name']
            for d in dataset.datasets] == ['sar', 'dota', 'dronevehicle']
    assert [len(d.metainfo['classes']) for d in dataset.datasets] == [6, 15, 5]


def test_mini_training_loader_gives_2_sar_1_dota_1_dronevehicle(mini_config):
    loader = Runner.build_dataloader(mini_config.train_dataloader, seed=0)
    for batch in itertools.islice(iter(loader), 2):
        names = [s.metainfo['dataset_name'] for s in batch['data_samples']]
        assert names == ['sar', 'sar', 'dota', 'dronevehicle']
