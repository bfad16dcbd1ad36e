"""SM3Det's one config trains with the recipe's optimizer step on 1, 2, 4 or
8 GPUs (``ImagesPerStepRunner``): 32 images at 2:1:1 (SAR, DOTA,
DroneVehicle), the same number of steps and the same schedule in steps."""
import itertools
import os.path as osp
from collections import Counter

import pytest
import torch
from mmengine.config import Config
from mmengine.hooks import CheckpointHook
from mmengine.optim import OptimWrapper
from mmengine.registry import RUNNERS
from mmrotate.registry import DATA_SAMPLERS

import sm3det.engine.images_per_step_runner as images_per_step_runner
from sm3det.engine import DSOHook, ImagesPerStepRunner
from mini_training import mini_cfg
from repository import REPO_ROOT

RECIPE = 'configs/sm3det/sm3det_convnext-t_fpn_33k_soi-det.py'


class Parts:
    """A ConcatDataset's interface: three parts of 50, 30 and 20 images."""
    sizes = (50, 30, 20)
    datasets = [range(size) for size in sizes]
    cumulative_sizes = list(itertools.accumulate(sizes))

    def __len__(self):
        return sum(self.sizes)

    def __getitem__(self, index):
        return index

    def source(self, index):
        return sum(index >= end for end in self.cumulative_sizes)


def recipe_runner(tmp_path, monkeypatch, gpus):
    """The recipe's config and its runner as one of ``gpus`` processes; a
    toy model and data set stand in for SM3Det's."""
    monkeypatch.setattr(images_per_step_runner, 'get_world_size', lambda: gpus)
    cfg = Config.fromfile(osp.join(REPO_ROOT, RECIPE))
    runner = ImagesPerStepRunner(
        model=torch.nn.Linear(1, 1),
        work_dir=str(tmp_path),
        train_dataloader=dict(
            cfg.train_dataloader,
            dataset=Parts(),
            num_workers=0,
            persistent_workers=False),
        train_cfg=cfg.train_cfg,
        optim_wrapper=cfg.optim_wrapper,
        param_scheduler=cfg.param_scheduler,
        auto_scale_lr=cfg.auto_scale_lr,
        default_hooks=cfg.default_hooks,
        custom_hooks=cfg.custom_hooks,
        default_scope=cfg.default_scope,
        experiment_name=f'{gpus}gpus',
        # only the keys it reads: printing the whole config takes seconds
        cfg=Config(
            dict(
                images_per_step=cfg.images_per_step,
                train_dataloader=dict(
                    batch_size=cfg.train_dataloader.batch_size))))
    return cfg, runner


def log_text(runner) -> str:
    with open(osp.join(runner.log_dir, f'{runner.timestamp}.log')) as f:
        return f.read()


@pytest.mark.parametrize('gpus', [1, 2, 4, 8])
def test_the_optimizer_step_is_the_recipe_batch(gpus, tmp_path, monkeypatch):
    recipe, runner = recipe_runner(tmp_path, monkeypatch, gpus)
    k = runner.apply_images_per_step()
    loader = recipe.train_dataloader
    assert gpus * loader.batch_size * k == recipe.images_per_step == 32
    assert f'32 images per step: {gpus} GPU' in log_text(runner)

    # The resolved objects: the recipe's counts x k (unchanged on 8 GPUs).
    assert runner.optim_wrapper['accumulative_counts'] == k
    loop = runner.train_loop
    assert (loop.max_iters,
            loop.val_interval) == (recipe.train_cfg.max_iters * k,
                                   recipe.train_cfg.val_interval * k)
    runner.optim_wrapper = OptimWrapper(
        torch.optim.SGD(runner.model.parameters(), lr=1e-4))
    warmup, steps = runner.build_param_scheduler(runner.param_schedulers)
    assert (warmup.begin, warmup.end) == (0, recipe.param_scheduler[0].end * k)
    assert steps.end == recipe.param_scheduler[1].end * k
    assert sorted(steps.milestones) == [
        m * k for m in recipe.param_scheduler[1].milestones
    ]
    checkpoint, = (h for h in runner.hooks if isinstance(h, CheckpointHook))
    assert checkpoint.interval == recipe.default_hooks.checkpoint.interval * k
    dso, = (h for h in runner.hooks if isinstance(h, DSOHook))
    assert dso.warmup_iters == recipe.custom_hooks[0].warmup_iters * k
    assert dso.alpha == pytest.approx(recipe.custom_hooks[0].alpha / k)
    assert runner.optim_wrapper.optimizer.defaults['lr'] == 1e-4
    assert not recipe.auto_scale_lr.enable

    # One optimizer step: k batches on each of the `gpus` ranks, 16:8:8.
    parts, sources = loop.dataloader.dataset, Counter()
    for rank in range(gpus):
        sampler = DATA_SAMPLERS.build(
            dict(loader.sampler, dataset=parts, seed=0))
        sampler.rank, sampler.world_size = rank, gpus
        step = itertools.islice(sampler, loader.batch_size * k)
        sources.update(parts.source(int(index)) for index in step)
    assert sources == {0: 16, 1: 8, 2: 8}


def test_the_config_keeps_the_recipe_counts(tmp_path, monkeypatch):
    """Scaling is applied once, to the runtime objects: the config keeps the
    recipe's counts (its copy in the work dir, reused to resume, too:
    test_a_mini_run_trains_and_resumes_with_the_scaled_counts)."""
    cfg, runner = recipe_runner(tmp_path, monkeypatch, gpus=2)
    assert runner.apply_images_per_step() == 4
    assert runner.apply_images_per_step() == 4
    recipe = Config.fromfile(osp.join(REPO_ROOT, RECIPE))
    assert runner.train_loop.max_iters == recipe.train_cfg.max_iters * 4
    for key in ('train_dataloader', 'train_cfg', 'param_scheduler',
                'optim_wrapper', 'default_hooks', 'custom_hooks'):
        assert cfg[key] == recipe[key]


def test_resuming_on_another_gpu_count_is_refused(tmp_path, monkeypatch):
    runners = []
    for gpus in (2, 4):
        _, runner = recipe_runner(tmp_path / str(gpus), monkeypatch, gpus)
        runner.apply_images_per_step()
        runner.optim_wrapper = OptimWrapper(
            torch.optim.SGD(runner.model.parameters(), lr=1e-4))
        runner.param_schedulers = runner.build_param_scheduler(
            runner.param_schedulers)
        runners.append(runner)
    saved, resumed = runners
    saved.save_checkpoint(str(tmp_path), 'iter_0.pth')
    with pytest.raises(
            ValueError,
            match='trained with 4 accumulated iterations per step, this run '
            'has 2'):
        resumed.resume(str(tmp_path / 'iter_0.pth'))


@pytest.mark.parametrize('gpus', [3, 5, 16])
def test_a_gpu_count_that_does_not_divide_the_step_is_refused(
        gpus, tmp_path, monkeypatch):
    _, runner = recipe_runner(tmp_path, monkeypatch, gpus)  # tests can run
    with pytest.raises(
            ValueError,
            match=rf'images_per_step=32 is not a multiple of {gpus} GPUs x 4 '
            r'images \(train_dataloader.batch_size\)'):
        runner.train()


def test_a_mini_run_trains_and_resumes_with_the_scaled_counts(
        trained_mini, tmp_path):
    """SM3Det-mini, 1 process, 8 images per step = 2 accumulated iterations
    of 4: 2 steps take 4 iterations; resumed at step 1, it ends at
    iteration 4 too (counts scaled once)."""
    cfg = mini_cfg(trained_mini.data_root, str(tmp_path / 'work'))
    cfg.merge_from_dict(
        dict(
            runner_type='mmrotate.ImagesPerStepRunner',
            images_per_step=8,
            val_cfg=None,
            val_dataloader=None,
            val_evaluator=None))
    cfg.train_cfg.update(max_iters=2, val_interval=2)
    cfg.param_scheduler[1].update(end=2, milestones=[1])
    cfg.default_hooks.checkpoint.update(interval=1, max_keep_ckpts=2)
    cfg.default_hooks.logger.interval = 1

    def optimizer_steps(runner):
        return {
            int(state['step'])
            for state in runner.optim_wrapper.optimizer.state.values()
        }

    runner = RUNNERS.build(cfg)
    runner.train()
    assert '8 images per step: 1 GPU x 4 images x 2 accumulated ' \
        'iterations; iteration counts x2' in log_text(runner)
    assert runner.iter == 4 and optimizer_steps(runner) == {2}
    assert runner.param_schedulers[1].end == 4
    assert sorted(runner.param_schedulers[1].milestones) == [2]
    work_dir = cfg.work_dir
    assert osp.isfile(osp.join(work_dir, 'iter_2.pth'))
    assert osp.isfile(osp.join(work_dir, 'iter_4.pth'))

    # The work dir's copy keeps the recipe's counts, so that a run resumed
    # with it scales them once, as this one does.
    dumped = Config.fromfile(osp.join(work_dir, osp.basename(cfg.filename)))
    for key in ('train_cfg', 'param_scheduler', 'optim_wrapper',
                'default_hooks', 'custom_hooks', 'images_per_step'):
        assert dumped[key] == cfg[key]
    cfg.merge_from_dict(
        dict(resume=True, load_from=osp.join(work_dir, 'iter_2.pth')))
    resumed = RUNNERS.build(cfg)
    resumed.train()
    assert resumed.iter == 4 and optimizer_steps(resumed) == {2}


def test_auto_scale_lr_is_refused_with_accumulation(tmp_path, monkeypatch):
    """mmengine's rule counts GPUs x images per GPU, not the accumulation."""
    _, runner = recipe_runner(tmp_path, monkeypatch, gpus=2)
    runner.auto_scale_lr = dict(enable=True, base_batch_size=32)
    with pytest.raises(ValueError, match='auto_scale_lr'):
        runner.apply_images_per_step()
