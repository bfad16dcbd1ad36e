"""An iteration-based training loop that resumes without re-reading data."""
from mmengine.logging import print_log
from mmengine.runner import IterBasedTrainLoop
from mmrotate.registry import LOOPS

from .mmengine_internals import InfiniteDataloaderIterator


class _ReplayedIterator(InfiniteDataloaderIterator):
    """mmengine's infinite data-loader iterator whose first ``skipped``
    ``next()`` calls return None at once: they answer mmengine's replay of
    the finished iterations, whose batches the sampler already skips."""

    def __init__(self, dataloader, skipped: int):
        super().__init__(dataloader)
        self._skipped = skipped

    def __next__(self):
        if self._skipped > 0:
            self._skipped -= 1
            return None
        return super().__next__()


@LOOPS.register_module()
class ResumableIterBasedTrainLoop(IterBasedTrainLoop):
    """``IterBasedTrainLoop`` that resumes at iteration N instantly.

    mmengine's loop skips the N finished iterations by drawing N batches
    from the data loader, loading and augmenting every image. When the
    sampler can start at a position (``set_start``: SM3Det's
    ``ResumableMultiSourceSampler`` and ``SingleSourceSampler``), this loop
    starts it after the ``N x batch_size`` indices those iterations used and
    loads nothing for them; with other samplers it replays as mmengine does.
    Same arguments as ``IterBasedTrainLoop``.
    """

    def run(self):
        sampler = self.dataloader.sampler
        batch_size = self.dataloader.batch_size
        done = self.iter
        if done > 0 and hasattr(sampler, 'set_start') and batch_size:
            sampler.set_start(done * batch_size)
            # Built after set_start: data-loader workers prefetch at once.
            self.dataloader_iterator = _ReplayedIterator(
                self.dataloader, skipped=done)
            print_log(
                f'resuming at iteration {done}: the sampler starts '
                f'after the {done * batch_size} samples per process '
                'already trained on (none is loaded again)',
                logger='current')
        return super().run()
