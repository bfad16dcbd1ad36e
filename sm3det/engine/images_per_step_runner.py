"""A Runner that keeps the recipe's optimizer step on any number of GPUs."""
import copy
from typing import Optional, Sequence

from mmengine.dist import get_world_size
from mmengine.hooks import CheckpointHook
from mmengine.runner import Runner
from mmrotate.registry import RUNNERS

from .hooks.dso_hook import DSOHook


def accumulation_steps(images_per_step: int, world_size: int,
                       batch_size: int) -> int:
    """Data-loader iterations per optimizer step.

    Args:
        images_per_step (int): images in one optimizer step, over all GPUs.
        world_size (int): GPUs (processes) of the run.
        batch_size (int): images per GPU per iteration.

    Returns:
        int: ``images_per_step / (world_size * batch_size)``, at least 1.

    Raises:
        ValueError: where that is not a whole number of at least 1.
    """
    per_iteration = world_size * batch_size
    if images_per_step < 1 or images_per_step % per_iteration:
        raise ValueError(
            f'images_per_step={images_per_step} is not a multiple of '
            f'{world_size} GPUs x {batch_size} images '
            f'(train_dataloader.batch_size) = {per_iteration} images per '
            'iteration: run on a number of GPUs (or with a batch size) '
            'whose product divides images_per_step')
    return images_per_step // per_iteration


def _scaled(cfg: dict, k: int, keys: Sequence[str]) -> dict:
    """A copy of ``cfg`` whose ``keys`` (counts or lists of counts) are
    multiplied by ``k``; keys it does not set keep their defaults."""
    cfg = copy.deepcopy(cfg)
    for key in keys:
        if key not in cfg:
            continue
        value = cfg[key]
        if isinstance(value, (list, tuple)):
            cfg[key] = [v * k for v in value]
        else:
            cfg[key] = value * k
    return cfg


@RUNNERS.register_module()
class ImagesPerStepRunner(Runner):
    """``Runner`` whose optimizer step takes ``images_per_step`` images (a
    top-level config key) on any number of GPUs.

    When training starts, ``k = images_per_step / (GPUs x
    train_dataloader.batch_size)`` (a whole number, else a ``ValueError``)
    becomes the optim wrapper's ``accumulative_counts``, and every count the
    config states in optimizer steps is scaled to data-loader iterations:
    the train loop's ``max_iters``, ``val_interval`` and ``val_begin``; the
    ``begin``, ``end`` and ``milestones`` of iteration-based parameter
    schedulers; the checkpoint interval; DSO's ``warmup_iters`` (x k) and
    EMA rate ``alpha`` (/ k: the same horizon in images). The config keeps
    the recipe's values (so does its copy in the work dir): only the runtime
    objects are scaled, and a run resumed from either computes the same k.
    Resuming a checkpoint saved with another k (another GPU count) raises,
    so does ``auto_scale_lr`` with k > 1 (mmengine's rule ignores the
    accumulation; with k = 1 it scales the learning rate to an
    ``images_per_step`` other than its ``base_batch_size``). Testing is
    unaffected.

    Selected by ``runner_type = 'mmrotate.ImagesPerStepRunner'``: this
    project's and MMRotate's ``tools/train.py`` build it from the config.
    """
    accumulative_counts: Optional[int] = None

    def train(self):
        self.apply_images_per_step()
        return super().train()

    def apply_images_per_step(self) -> int:
        """Set the accumulation and scale the iteration counts, once;
        ``train`` calls it first.

        Returns:
            int: k, the data-loader iterations per optimizer step.
        """
        if self.accumulative_counts is not None:
            return self.accumulative_counts
        images_per_step = self.cfg.get('images_per_step')
        if images_per_step is None:
            raise ValueError('ImagesPerStepRunner needs `images_per_step` in '
                             'the config: the images of one optimizer step')
        world_size = get_world_size()
        batch_size = self.cfg.train_dataloader.batch_size
        k = accumulation_steps(images_per_step, world_size, batch_size)
        if k > 1 and (self.auto_scale_lr or {}).get('enable', False):
            raise ValueError(
                'auto_scale_lr scales the learning rate to GPUs x images per '
                'GPU and ignores the accumulation: set auto_scale_lr.enable='
                'False (the step keeps its images_per_step images)')
        self._scale_iteration_counts(k)
        # Saved with every checkpoint: ``resume`` compares it.
        self.message_hub.update_info('accumulative_counts', k)
        self.accumulative_counts = k
        self.logger.info(
            f'{images_per_step} images per step: {world_size} '
            f'GPU{"s" * (world_size > 1)} x {batch_size} images x {k} '
            f'accumulated iteration{"s" * (k > 1)}; iteration counts x{k}')
        return k

    def _scale_iteration_counts(self, k: int) -> None:
        """Accumulate k iterations per step and multiply the counts by k."""
        schedulers = self.param_schedulers
        if isinstance(schedulers, dict):
            schedulers = [schedulers]
        configs = (self.optim_wrapper, *(schedulers or []))
        if not all(isinstance(cfg, dict) for cfg in configs):
            raise TypeError('ImagesPerStepRunner scales configs: give '
                            'optim_wrapper and param_scheduler as dicts')
        if 'accumulative_counts' in self.optim_wrapper:
            raise ValueError(
                'images_per_step sets optim_wrapper.accumulative_counts: '
                'remove it from the config')
        self.optim_wrapper = dict(
            copy.deepcopy(self.optim_wrapper), accumulative_counts=k)
        if schedulers is not None:
            self.param_schedulers = [
                s if s.get('by_epoch', True) else _scaled(
                    s, k, ('begin', 'end', 'milestones')) for s in schedulers
            ]
        for hook in self.hooks:
            if isinstance(hook, CheckpointHook) and not hook.by_epoch:
                hook.interval *= k
            elif isinstance(hook, DSOHook):
                hook.warmup_iters *= k
                hook.alpha /= k

    def build_train_loop(self, loop):
        """The train loop, its counts scaled by k (``train`` sets k first)."""
        if isinstance(loop, dict) and self.accumulative_counts is not None:
            loop = _scaled(loop, self.accumulative_counts,
                           ('max_iters', 'val_interval', 'val_begin'))
        return super().build_train_loop(loop)

    def resume(self, filename: str, *args, **kwargs) -> None:
        super().resume(filename, *args, **kwargs)
        saved = self.message_hub.get_info('accumulative_counts')
        if None not in (saved, self.accumulative_counts) and \
                saved != self.accumulative_counts:
            raise ValueError(
                f'{filename} was trained with {saved} accumulated iterations '
                f'per step, this run has {self.accumulative_counts} (another '
                'GPU count): resume on the GPU count that saved it')
