"""The 1-, 2- and 4-GPU SM3Det configs keep the recipe's optimizer step:
32 images at 2:1:1 (SAR, DOTA, DroneVehicle), the same number of steps and
the same schedule in steps."""
import itertools
import os.path as osp
from collections import Counter

import pytest
from mmengine.config import Config
from mmrotate.registry import DATA_SAMPLERS

from tool_loader import REPO_ROOT

RECIPE = 'configs/sm3det/sm3det_convnext-t_fpn_33k_soi-det.py'


class Parts:
    """A ConcatDataset's interface: three parts of 50, 30 and 20 images."""
    sizes = (50, 30, 20)
    datasets = [range(size) for size in sizes]
    cumulative_sizes = list(itertools.accumulate(sizes))

    def __len__(self):
        return sum(self.sizes)

    def source(self, index):
        return sum(index >= end for end in self.cumulative_sizes)


def load(path):
    return Config.fromfile(osp.join(REPO_ROOT, path))


@pytest.mark.parametrize('gpus', [1, 2, 4])
def test_accumulated_step_is_the_recipe_batch(gpus):
    name = f'sm3det_convnext-t_fpn_33k_soi-det_{gpus}gpu' + \
        ('s' if gpus > 1 else '')
    cfg, recipe = load(f'configs/sm3det/{name}.py'), load(RECIPE)
    counts = cfg.optim_wrapper.accumulative_counts
    loader = cfg.train_dataloader
    assert gpus * loader.batch_size * counts == 32
    assert cfg.train_cfg.max_iters == recipe.train_cfg.max_iters * counts
    assert [s.get('milestones') for s in cfg.param_scheduler] == [
        None if m is None else [x * counts for x in m]
        for m in (s.get('milestones') for s in recipe.param_scheduler)
    ]
    assert cfg.optim_wrapper.optimizer.lr == recipe.optim_wrapper.optimizer.lr
    assert not cfg.auto_scale_lr.enable

    # One optimizer step: `counts` batches on each of the `gpus` ranks.
    parts = Parts()
    sources = Counter()
    for rank in range(gpus):
        sampler = DATA_SAMPLERS.build(
            dict(loader.sampler, dataset=parts, seed=0))
        sampler.rank, sampler.world_size = rank, gpus
        step = itertools.islice(sampler, loader.batch_size * counts)
        sources.update(parts.source(int(index)) for index in step)
    assert sources == {0: 16, 1: 8, 2: 8}
