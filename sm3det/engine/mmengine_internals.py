"""The private parts of mmengine that SM3Det's training machinery relies on,
all in this one module.

Checked against mmengine 0.10.4, 0.10.5, 0.10.6 and 0.10.7 (the range
``requirements/runtime.txt`` allows is ``>=0.10.4,<0.11``; 0.10.7 is the
version the tests ran with). A release that renames or removes one of them
fails loudly, naming it, the installed mmengine version and this module:
the first two when this module is imported (``import sm3det``), the third at
the start of every training run.

* ``mmengine.runner.loops._InfiniteDataloaderIterator``: the iterator
  ``IterBasedTrainLoop`` draws its batches from (it restarts the data loader
  at the end of each epoch). A resumed loop replays its finished iterations
  by calling ``next()`` on it that many times
  (``ResumableIterBasedTrainLoop`` answers those calls without loading).
* ``CheckpointHook._save_checkpoint_with_step(runner, step, meta)``: the one
  method every periodic and final save of ``CheckpointHook`` passes through;
  :class:`StepCheckpointHook` gives it a public name.
* ``Runner._load_from`` / ``Runner._resume``: the run's ``load_from`` and
  ``resume`` arguments, which the Runner keeps only privately
  (``Runner.load_or_resume`` decides from them; ``runner.cfg`` lacks them
  when a Runner is built without a config).
"""
from typing import Optional, Tuple

import mmengine
from mmengine.hooks import CheckpointHook

__all__ = [
    'CHECKED_VERSIONS', 'InfiniteDataloaderIterator', 'StepCheckpointHook',
    'load_or_resume_args'
]

CHECKED_VERSIONS = '0.10.4 - 0.10.7'


def _gone(name: str) -> RuntimeError:
    return RuntimeError(
        f'{name} is not in mmengine {mmengine.__version__}: SM3Det relies '
        f'on this private part of mmengine (checked against '
        f'{CHECKED_VERSIONS}); adapt sm3det/engine/mmengine_internals.py or '
        'install an mmengine of that range')


try:
    from mmengine.runner.loops import \
        _InfiniteDataloaderIterator as InfiniteDataloaderIterator
except ImportError:
    raise _gone('mmengine.runner.loops._InfiniteDataloaderIterator') from None

if not callable(getattr(CheckpointHook, '_save_checkpoint_with_step', None)):
    raise _gone('CheckpointHook._save_checkpoint_with_step')


class StepCheckpointHook(CheckpointHook):
    """mmengine's ``CheckpointHook`` (same arguments) whose saves all go
    through :meth:`save_step`, for subclasses to override."""

    def _save_checkpoint_with_step(self, runner, step: int,
                                   meta: dict) -> None:
        self.save_step(runner, step, meta)

    def save_step(self, runner, step: int, meta: dict) -> None:
        """Save the checkpoint of ``step`` (the epoch or iteration number in
        its file name) as mmengine does, removing the outdated ones."""
        super()._save_checkpoint_with_step(runner, step, meta)


def load_or_resume_args(runner) -> Tuple[Optional[str], bool]:
    """The Runner's ``load_from`` (a path or None) and ``resume`` arguments,
    from which ``Runner.load_or_resume`` picks the checkpoint to load."""
    try:
        return runner._load_from, runner._resume
    except AttributeError:
        raise _gone('Runner._load_from / Runner._resume') from None
