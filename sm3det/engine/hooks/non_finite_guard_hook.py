"""Report the optimizer steps skipped for NaN / inf, stop after too many."""
import logging
import math
from typing import List, Optional

import torch
from mmengine.dist import all_gather_object
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmrotate.registry import HOOKS

from ..optimizers.non_finite_guard import SkipNonFiniteMixin


def _image_paths(data_batch) -> List[str]:
    """The ``img_path`` of every sample in a batch (where it has one)."""
    samples = data_batch.get('data_samples', []) if isinstance(
        data_batch, dict) else []
    paths = []
    for sample in samples or []:
        metainfo = getattr(sample, 'metainfo', None)
        if isinstance(metainfo, dict) and 'img_path' in metainfo:
            paths.append(str(metainfo['img_path']))
    return paths


def _format(losses: dict) -> str:
    return ', '.join(f'{name}={value:.4g}' for name, value in losses.items())


@HOOKS.register_module()
class NonFiniteGuardHook(Hook):
    """Log every non-finite loss and every skipped optimizer step; stop the
    run after ``max_consecutive_skips`` skipped steps in a row.

    The skipping itself is done by the optimizer wrapper
    (``SkipNonFiniteOptimWrapper``, ``SkipNonFiniteAmpOptimWrapper``):
    a hook runs after the step and could not undo it. With another wrapper
    this hook only logs non-finite losses (and warns once).

    Each iteration whose losses are not all finite is logged with its losses
    and the image paths of its batch; each skipped step with the iterations
    of its window that had such losses (gathered from every process) and the
    skip counts. The message hub scalar ``train/skipped_steps`` counts the
    skips. The error that stops the run names the iteration, the losses,
    the images and the last checkpoint saved (taken before the skips began
    or during them: skipped steps change no weight).

    Args:
        max_consecutive_skips (int): skipped steps in a row that stop the
            run. Defaults to 10.
    """

    priority = 'ABOVE_NORMAL'  # before DSO's and the logger's view of it

    def __init__(self, max_consecutive_skips: int = 10):
        if not isinstance(max_consecutive_skips, int) or \
                max_consecutive_skips < 1:
            raise ValueError('max_consecutive_skips must be a positive int, '
                             f'got {max_consecutive_skips!r}')
        self.max_consecutive_skips = max_consecutive_skips
        self._seen_skips = 0
        self._window: List[dict] = []

    def before_train(self, runner) -> None:
        wrapper = runner.optim_wrapper
        if isinstance(wrapper, SkipNonFiniteMixin):
            self._seen_skips = wrapper.skipped_steps  # also after a resume
        else:
            print_log(
                f'NonFiniteGuardHook: optim_wrapper is '
                f'{type(wrapper).__name__}, which steps whatever the loss; '
                'set its type to SkipNonFiniteOptimWrapper or '
                'SkipNonFiniteAmpOptimWrapper to skip NaN / inf steps',
                logger='current',
                level=logging.WARNING)

    def after_train_iter(self,
                         runner,
                         batch_idx: int,
                         data_batch=None,
                         outputs: Optional[dict] = None) -> None:
        losses = {
            name: float(torch.as_tensor(value).detach().float().mean())
            for name, value in (outputs or {}).items()
        }
        if not all(math.isfinite(value) for value in losses.values()):
            record = dict(
                iter=runner.iter + 1,
                losses=losses,
                images=_image_paths(data_batch),
                rank=runner.rank)
            self._window.append(record)
            print_log(
                f'non-finite loss at iteration {record["iter"]} '
                f'(rank {runner.rank}): {_format(losses)}; images: '
                f'{record["images"]}',
                logger='current',
                level=logging.WARNING)
        wrapper = runner.optim_wrapper
        if not isinstance(wrapper, SkipNonFiniteMixin):
            self._window.clear()
            return
        if not wrapper.should_update():  # no optimizer step this iteration
            return
        window, self._window = self._window, []
        if wrapper.skipped_steps == self._seen_skips:
            return
        self._seen_skips = wrapper.skipped_steps
        runner.message_hub.update_scalar('train/skipped_steps',
                                         wrapper.skipped_steps)
        # Every process skipped this step (the decision is reduced).
        window = [
            r for rank_window in all_gather_object(window) for r in rank_window
        ]
        cause = 'non-finite gradients' if not window else \
            'non-finite losses: ' + '; '.join(
                f'iteration {r["iter"]} rank {r["rank"]}: '
                f'{_format(r["losses"])}, images {r["images"]}'
                for r in window)
        print_log(
            f'skipped the optimizer step at iteration {runner.iter + 1} '
            f'({wrapper.consecutive_skips} in a row, '
            f'{wrapper.skipped_steps} in all): {cause}',
            logger='current',
            level=logging.WARNING)
        if wrapper.consecutive_skips >= self.max_consecutive_skips:
            last = runner.message_hub.get_info('last_ckpt')
            raise RuntimeError(
                f'stopping at iteration {runner.iter + 1}: '
                f'{wrapper.consecutive_skips} optimizer steps in a row were '
                f'skipped for NaN / inf (max_consecutive_skips='
                f'{self.max_consecutive_skips}); last skip: {cause}. Last '
                'checkpoint: ' + (f'{last} (resume with --resume {last})'
                                  if last else 'none saved yet'))
