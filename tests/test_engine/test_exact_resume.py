"""A resumed run equals an uninterrupted one, bit for bit, and reads no
batch of the iterations it skips.

The toy run (tests/resumable_training.py) has MoE gating noise, drop path, a
random augmentation, 2:1:1 batches, DSO and AdamW; it is resumed from the
checkpoint that the straight run saved at iteration 3 of 6.
"""
import itertools
import os
import subprocess
import sys

import pytest
import torch

from sm3det.datasets import ResumableMultiSourceSampler, SingleSourceSampler
from resumable_training import (ToyPart, assert_equal_nested,
                                assert_same_state, make_dataset, make_runner)


@pytest.mark.parametrize('sampler_type', ['multi', 'single'])
def test_sampler_starts_at_a_position(sampler_type):
    dataset = make_dataset()

    def build():
        if sampler_type == 'multi':
            return ResumableMultiSourceSampler(
                dataset, batch_size=4, source_ratio=[2, 1, 1], seed=3)
        return SingleSourceSampler(dataset, batch_size=4, seed=3)

    stream = list(itertools.islice(build(), 60))
    sampler = build()
    # A first, prefetching iterator (as the loop builds before resuming)
    # must not shift the stream of the next one.
    list(itertools.islice(sampler, 8))
    sampler.set_start(24)
    tail = list(itertools.islice(sampler, 36))
    assert tail == stream[24:]
    assert [i.seed for i in tail] == [i.seed for i in stream[24:]]
    assert len({i.seed for i in stream}) == len(stream)


@pytest.mark.parametrize('num_workers', [0, 2])
def test_resume_equals_straight_run(tmp_path, num_workers):
    straight, straight_dso, straight_log = make_runner(
        tmp_path / 'straight', num_workers=num_workers)
    straight.train()
    resumed, resumed_dso, resumed_log = make_runner(
        tmp_path / 'resumed',
        num_workers=num_workers,
        resume_from=str(tmp_path / 'straight' / 'iter_3.pth'))
    resumed.train()

    assert resumed.iter == straight.iter == 6
    assert_same_state(straight, resumed)
    assert resumed_dso.state_dict() == straight_dso.state_dict()
    assert resumed_log.losses == straight_log.losses[3:]
    # Seeded draws: the worker count does not change the run.
    if num_workers:
        zero, _, zero_log = make_runner(tmp_path / 'zero', max_iters=4)
        zero.train()
        assert zero_log.losses == straight_log.losses[:4]


def test_resume_loads_no_skipped_batch(tmp_path):
    straight, _, straight_log = make_runner(tmp_path / 'straight', max_iters=4)
    straight.train()
    ToyPart.loads.clear()
    resumed, _, resumed_log = make_runner(
        tmp_path / 'resumed',
        max_iters=4,
        resume_from=str(tmp_path / 'straight' / 'iter_3.pth'))
    resumed.train()
    # One batch of 4 (2:1:1) for iteration 4; mmengine's replay reads 16.
    assert ToyPart.loads == dict(a=2, b=1, c=1)
    assert resumed_log.losses == straight_log.losses[3:]


DIST_MODULE = '''
from mmrotate.registry import DATASETS, MODELS
from resumable_training import ToyMoEModel, make_dataset

MODELS.register_module(module=ToyMoEModel)
DATASETS.register_module(name='ToyParts', module=make_dataset)
'''

# One launch, two runs in the same two processes (a launch costs ~10 s).
DIST_SCRIPT = '''
import os, sys
import torch
import sm3det
from mmengine.dist import get_rank
from mmengine.runner import Runner
from sm3det.utils.launcher import close_distributed, load_run_config

out, config = sys.argv[1:3]


def train(name, **options):
    cfg = load_run_config(config, dict(experiment_name=name, **options),
                          'pytorch', os.path.join(out, name))
    runner = Runner.from_cfg(cfg)
    runner.train()
    dso = [h for h in runner.hooks if type(h).__name__ == 'DSOHook'][0]
    torch.save(dict(params=dict(runner.model.module.named_parameters()),
                    optimizer=runner.optim_wrapper.state_dict(),
                    dso=dso.state_dict()),
               os.path.join(out, name, f'rank{get_rank()}.pth'))


train('straight')
train('resumed', resume=True,
      load_from=os.path.join(out, 'straight', 'iter_3.pth'))
close_distributed()
'''

DIST_CONFIG = '''
default_scope = 'mmrotate'
custom_imports = dict(imports=['sm3det', 'toy_resume'],
                      allow_failed_imports=False)
model = dict(type='ToyMoEModel')
find_unused_parameters = True
train_dataloader = dict(
    batch_size=4, num_workers=0, collate_fn=dict(type='pseudo_collate'),
    sampler=dict(type='ResumableMultiSourceSampler', batch_size=4,
                 source_ratio=[2, 1, 1]),
    dataset=dict(type='ToyParts'))
optim_wrapper = dict(
    type='SkipNonFiniteOptimWrapper', optimizer=dict(type='AdamW', lr=0.01),
    constructor='SubModuleOptimWrapperConstructor',
    paramwise_cfg=dict(sub_modules=dict(
        head_a='head_a', head_b='head_b', head_c='head_c')))
train_cfg = dict(type='ResumableIterBasedTrainLoop', max_iters=6)
default_hooks = dict(checkpoint=dict(type='ResumableCheckpointHook',
                                     by_epoch=False, interval=3))
custom_hooks = [
    dict(type='DSOHook', alpha=0.5, warmup_iters=2, loss_terms=dict(
        head_a=['a.loss'], head_b=['b.loss'], head_c=['c.loss']))]
# Each rank its own seed: their gating noise and drop path differ.
randomness = dict(seed=0, diff_rank_seed=True, deterministic=True)
'''


@pytest.mark.skipif(torch.cuda.is_available(), reason='tests the CPU path')
def test_two_process_resume_equals_straight_run(tmp_path, repo_root):
    (tmp_path / 'toy_resume.py').write_text(DIST_MODULE)
    (tmp_path / 'toy_config.py').write_text(DIST_CONFIG)
    (tmp_path / 'train_twice.py').write_text(DIST_SCRIPT)
    env = dict(
        os.environ,
        PYTHONPATH=os.pathsep.join(
            [str(tmp_path),
             os.path.join(repo_root, 'tests'), repo_root]))
    proc = subprocess.run([
        sys.executable, '-m', 'torch.distributed.run', '--nproc_per_node=2',
        '--master_port=29541',
        str(tmp_path / 'train_twice.py'),
        str(tmp_path),
        str(tmp_path / 'toy_config.py')
    ],
                          env=env,
                          cwd=tmp_path,
                          capture_output=True,
                          text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]

    states = torch.load(tmp_path / 'straight' / 'iter_3.pth')['random_state']
    assert len(states) == 2
    assert not torch.equal(states[0]['torch'], states[1]['torch'])
    for rank in (0, 1):
        straight, resumed = (
            torch.load(tmp_path / run / f'rank{rank}.pth')
            for run in ('straight', 'resumed'))
        assert_equal_nested(straight, resumed, f'rank {rank}')
