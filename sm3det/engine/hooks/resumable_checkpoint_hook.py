"""Checkpoints that are never half-written and resume a run exactly."""
import glob
import logging
import os
import os.path as osp
import re
import zipfile
from typing import List, Optional

from mmengine.dist import all_gather_object, is_main_process
from mmengine.fileio import LocalBackend
from mmengine.hooks import CheckpointHook
from mmengine.logging import print_log
from mmengine.runner import find_latest_checkpoint
from mmrotate.registry import HOOKS

from ..random_state import get_random_state, set_random_state


def _fsync(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def replace_atomically(partial: str, path: str) -> None:
    """Move the complete file ``partial`` to ``path`` (same directory): a
    reader sees the old file or the new one, never a part of it."""
    _fsync(partial)
    os.replace(partial, path)
    _fsync(osp.dirname(osp.abspath(path)))


def checkpoint_problem(path: str) -> Optional[str]:
    """Why the torch checkpoint file ``path`` cannot be loaded, or None.

    Reads only the zip directory at the end of the file (``torch.save``
    writes a zip archive), so a truncated file is found without loading it.
    """
    if not osp.isfile(path):
        return 'does not exist'
    try:
        with zipfile.ZipFile(path) as archive:
            archive.namelist()
    except (zipfile.BadZipFile, OSError) as error:
        return (f'is damaged or truncated ({osp.getsize(path)} bytes; '
                f'{error})')
    return None


@HOOKS.register_module()
class ResumableCheckpointHook(CheckpointHook):
    """mmengine's ``CheckpointHook`` (same arguments), made safe to resume
    from.

    * Atomic (local directories): each checkpoint is written to
      ``<name>.partial`` next to it and renamed once complete; outdated
      checkpoints (``max_keep_ckpts``) are removed only afterwards, and
      ``last_checkpoint`` is replaced the same way, so it never names a
      missing or truncated file, whenever the process is killed. (mmengine
      removes the oldest checkpoint first and writes both files in place.)
      Other storage backends are written as by mmengine.
    * Exact: every rank's random state (``get_random_state``: Python, NumPy,
      torch, CUDA) is stored as ``checkpoint['random_state']``, a list
      indexed by rank, and restored when the run resumes, just before its
      first batch is drawn. Validation gives the training stream its random
      state back, so that validating after a checkpoint changes nothing.
      Checkpoints saved by ``save_best`` carry no random state.
    * Checked: the file a run resumes from is checked before
      anything is read; a damaged one is named, with the newest intact
      checkpoint next to it.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._rank_states: Optional[List[dict]] = None
        self._resumed_state: Optional[dict] = None
        self._val_state: Optional[dict] = None

    # ------------------------------------------------------------- resume
    def before_run(self, runner) -> None:
        # The file Runner.load_or_resume() is about to resume from (its
        # choice, made from the private _resume / _load_from it keeps).
        # Weights given as load_from alone may be in torch's older format.
        if not runner._resume:
            return
        path = runner._load_from
        if path is None:
            path = find_latest_checkpoint(runner.work_dir)
            if path == '':
                raise RuntimeError(
                    f'{osp.join(runner.work_dir, "last_checkpoint")} is '
                    'empty: resume from a checkpoint by name '
                    '(--resume CKPT)' + self._suggestion(runner.work_dir))
        if path is None or '://' in path:  # remote files: as mmengine
            return
        problem = checkpoint_problem(path)
        if problem:
            raise RuntimeError(
                f'cannot load checkpoint {path}: it {problem}.' +
                self._suggestion(osp.dirname(path), path))

    @staticmethod
    def _suggestion(directory: str, damaged: str = '') -> str:
        """' Resume from <the newest intact checkpoint in directory>.'"""

        def number(path):
            found = re.findall(r'\d+', osp.basename(path))
            return int(found[-1]) if found else -1

        candidates = sorted(
            glob.glob(osp.join(directory or '.', '*.pth')),
            key=number,
            reverse=True)
        for candidate in candidates:
            if osp.abspath(candidate) != osp.abspath(damaged or '') and \
                    checkpoint_problem(candidate) is None:
                return f' The newest intact checkpoint there is ' \
                       f'{candidate}: resume with --resume {candidate}'
        return ' No intact checkpoint was found next to it.'

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        if not runner._resume:  # load_from: a new run keeps its own seed
            return
        states = checkpoint.get('random_state')
        if states is None:
            print_log(
                'the checkpoint holds no random state (not saved by '
                'ResumableCheckpointHook, or by save_best): a resumed run '
                'continues with fresh random numbers',
                logger='current',
                level=logging.WARNING)
        elif len(states) != runner.world_size:
            print_log(
                f'the checkpoint holds the random state of {len(states)} '
                f'processes, this run has {runner.world_size}: it continues '
                'with fresh random numbers',
                logger='current',
                level=logging.WARNING)
        else:
            self._resumed_state = states[runner.rank]

    def before_train(self, runner) -> None:
        super().before_train(runner)
        # Restored here, after Runner.resume() has reseeded, before the first
        # batch is drawn.
        resumed, self._resumed_state = self._resumed_state, None
        if resumed is not None:
            set_random_state(resumed)

    def before_val(self, runner) -> None:
        self._val_state = get_random_state()

    def after_val(self, runner) -> None:
        if self._val_state is not None:
            set_random_state(self._val_state)
            self._val_state = None

    # --------------------------------------------------------------- save
    def _save_checkpoint_with_step(self, runner, step, meta) -> None:
        # Every rank passes here, while Runner.save_checkpoint and with it
        # before_save_checkpoint run on rank 0 only: gather the states now.
        self._rank_states = all_gather_object(get_random_state())
        try:
            if isinstance(self.file_backend, LocalBackend):
                self._save_atomically(runner, step, meta)
            else:
                super()._save_checkpoint_with_step(runner, step, meta)
        finally:
            self._rank_states = None

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        if self._rank_states is not None:
            checkpoint['random_state'] = self._rank_states

    def _save_atomically(self, runner, step, meta) -> None:
        filename = self.filename_tmpl.format(step)
        self.last_ckpt = self.file_backend.join_path(self.out_dir, filename)
        partial = f'{filename}.partial'
        runner.save_checkpoint(
            self.out_dir,
            partial,
            save_optimizer=self.save_optimizer,
            save_param_scheduler=self.save_param_scheduler,
            meta=meta,
            by_epoch=self.by_epoch,
            backend_args=self.backend_args,
            **self.args)
        outdated = self._keep(runner, step)
        runner.message_hub.update_info('last_ckpt', self.last_ckpt)
        if not is_main_process():
            return
        replace_atomically(osp.join(self.out_dir, partial), self.last_ckpt)
        pointer = osp.join(runner.work_dir, 'last_checkpoint')
        with open(pointer + '.partial', 'w') as f:
            f.write(self.last_ckpt)
        replace_atomically(pointer + '.partial', pointer)
        for old_step in outdated:
            old = osp.join(self.out_dir, self.filename_tmpl.format(old_step))
            if osp.isfile(old):
                os.remove(old)

    def _keep(self, runner, step) -> List[int]:
        """Record ``step`` among the kept checkpoints (as mmengine does);
        return the steps whose checkpoints are now outdated."""
        if self.max_keep_ckpts <= 0 or (self.keep_ckpt_ids
                                        and self.keep_ckpt_ids[-1] == step):
            return []
        outdated = []
        if len(self.keep_ckpt_ids) == self.max_keep_ckpts:
            outdated.append(self.keep_ckpt_ids.popleft())
        self.keep_ckpt_ids.append(step)
        runner.message_hub.update_info('keep_ckpt_ids',
                                       list(self.keep_ckpt_ids))
        return outdated
