"""Checkpoints that are never half-written and resume a run exactly."""
import glob
import logging
import os
import os.path as osp
import re
import zipfile
from collections import deque
from typing import Dict, List, Optional, Tuple

from mmengine.dist import all_gather_object, is_main_process
from mmengine.fileio import LocalBackend
from mmengine.logging import print_log
from mmengine.runner import find_latest_checkpoint
from mmrotate.registry import HOOKS

from ...utils.random_state import get_random_state, set_random_state
from ..mmengine_internals import StepCheckpointHook, load_or_resume_args


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
class ResumableCheckpointHook(StepCheckpointHook):
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
    * Tidy after kills (local directories): a resumed run counts every
      checkpoint of its output directory up to the resumed step towards
      ``max_keep_ckpts``, also those that runs killed before it wrote there
      (mmengine counts only the ones listed in the resumed checkpoint), so
      that its saves remove the outdated ones as an uninterrupted run's
      would; the file resumed from stays until ``max_keep_ckpts`` newer ones
      are complete. It removes the ``.partial`` files of saves that were
      killed. Other directories are never touched.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._rank_states: Optional[List[dict]] = None
        self._resumed_state: Optional[dict] = None
        self._val_state: Optional[dict] = None
        self._resumed = False

    # ------------------------------------------------------------- resume
    def before_run(self, runner) -> None:
        # The file Runner.load_or_resume() is about to resume from (its
        # choice, made from the same arguments).
        # Weights given as load_from alone may be in torch's older format.
        path, resume = load_or_resume_args(runner)
        if not resume:
            return
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
        # load_from: a new run keeps its own seed and checkpoints
        if not load_or_resume_args(runner)[1]:
            return
        self._resumed = True
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
        if isinstance(self.file_backend, LocalBackend) and self._resumed:
            self._take_over_checkpoints(runner)
        self._resumed = False
        # Restored here, after Runner.resume() has reseeded, before the first
        # batch is drawn.
        resumed, self._resumed_state = self._resumed_state, None
        if resumed is not None:
            set_random_state(resumed)

    def _take_over_checkpoints(self, runner) -> None:
        """Count the output directory's checkpoints up to the resumed step
        as kept (oldest first); remove the ``.partial`` files of killed
        saves."""
        done = runner.epoch if self.by_epoch else runner.iter
        checkpoints, partials = self._files_in(self.out_dir)
        if self.max_keep_ckpts > 0:
            kept = sorted(step for step in checkpoints if step <= done)
            self.keep_ckpt_ids = deque(kept)
            outdated = kept[:max(0, len(kept) - self.max_keep_ckpts + 1)]
            if outdated and is_main_process():
                print_log(
                    f'resumed at {done}: the next save removes '
                    f'{[osp.basename(checkpoints[step]) for step in outdated]}'
                    f' from {self.out_dir} (max_keep_ckpts='
                    f'{self.max_keep_ckpts}; checkpoints of interrupted runs '
                    'count too)',
                    logger='current')
        if not is_main_process():
            return
        pointer = osp.join(runner.work_dir, 'last_checkpoint.partial')
        if osp.isfile(pointer):
            partials.append(pointer)
        for partial in partials:
            os.remove(partial)
            print_log(
                f'removed {partial}, left by a save that was killed',
                logger='current')

    def _files_in(self, directory: str) -> Tuple[Dict[int, str], List[str]]:
        """The checkpoints in ``directory`` named by ``filename_tmpl`` (step
        -> path) and the paths of the ``.partial`` files of such names."""
        head, _, rest = self.filename_tmpl.partition('{')
        name = re.compile(
            re.escape(head) + r'(\d+)' + re.escape(rest.partition('}')[2]))
        checkpoints, partials = {}, []
        if not osp.isdir(directory):  # an out_dir is made at its first save
            return checkpoints, partials
        for entry in sorted(os.listdir(directory)):
            partial = entry.endswith('.partial')
            stem = entry[:-len('.partial')] if partial else entry
            match = name.fullmatch(stem)
            # the number as the template writes it (e.g. no leading zeros)
            if not match or self.filename_tmpl.format(int(match[1])) != stem:
                continue
            if partial:
                partials.append(osp.join(directory, entry))
            else:
                checkpoints[int(match[1])] = osp.join(directory, entry)
        return checkpoints, partials

    def before_val(self, runner) -> None:
        self._val_state = get_random_state()

    def after_val(self, runner) -> None:
        if self._val_state is not None:
            set_random_state(self._val_state)
            self._val_state = None

    # --------------------------------------------------------------- save
    def save_step(self, runner, step: int, meta: dict) -> None:
        # Every rank passes here, while Runner.save_checkpoint and with it
        # before_save_checkpoint run on rank 0 only: gather the states now.
        self._rank_states = all_gather_object(get_random_state())
        try:
            if isinstance(self.file_backend, LocalBackend):
                self._save_atomically(runner, step, meta)
            else:
                super().save_step(runner, step, meta)
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
        return the steps whose checkpoints are now outdated (more than one
        after a resume that took over a killed run's checkpoints)."""
        if self.max_keep_ckpts <= 0 or (self.keep_ckpt_ids
                                        and self.keep_ckpt_ids[-1] == step):
            return []
        outdated = []
        # popped before appending: mmengine's deque has a maxlen
        while len(self.keep_ckpt_ids) >= self.max_keep_ckpts:
            outdated.append(self.keep_ckpt_ids.popleft())
        self.keep_ckpt_ids.append(step)
        runner.message_hub.update_info('keep_ckpt_ids',
                                       list(self.keep_ckpt_ids))
        return outdated
