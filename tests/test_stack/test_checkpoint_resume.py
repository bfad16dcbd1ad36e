"""A Runner saves a checkpoint and resumes from it under torch >= 2.6, and
``ResumableCheckpointHook`` never leaves a half-written one behind, nor the
ones a killed run wrote.

torch loads with ``weights_only=True`` by default; ``sm3det_compat``
allow-lists the classes mmengine stores, so resuming works while files with
other pickled objects are still refused.
"""
import os
import os.path as osp
import pickle
import signal
import subprocess
import sys
import time

import pytest
import torch
from mmengine.fileio import LocalBackend
from mmengine.model import BaseModel
from mmengine.runner import Runner, find_latest_checkpoint
from torch import nn
from torch.utils.data import Dataset

from resumable_training import make_runner as make_toy_runner


class ToyModel(BaseModel):

    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(2, 1)

    def forward(self, inputs, data_samples=None, mode='tensor'):
        out = self.linear(torch.stack(inputs))
        if mode == 'loss':
            return dict(loss=(out - torch.stack(data_samples)).pow(2).mean())
        return out


class ToyDataset(Dataset):
    metainfo = dict()

    def __len__(self):
        return 16

    def __getitem__(self, i):
        x = torch.tensor([float(i), 1.0])
        return dict(inputs=x, data_samples=x.sum(0, keepdim=True))


def make_runner(work_dir, **kwargs):
    return Runner(
        model=ToyModel(),
        work_dir=work_dir,
        train_dataloader=dict(
            dataset=ToyDataset(),
            sampler=dict(type='InfiniteSampler'),
            batch_size=4,
            num_workers=0),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.01)),
        train_cfg=dict(type='IterBasedTrainLoop', max_iters=4),
        default_hooks=dict(
            checkpoint=dict(type='CheckpointHook', by_epoch=False,
                            interval=2)),
        default_scope='mmrotate',
        **kwargs)


def test_save_and_resume(tmp_path):
    first = make_runner(str(tmp_path), experiment_name='first')
    first.train()
    ckpt = osp.join(tmp_path, 'iter_2.pth')
    assert osp.exists(ckpt)

    resumed = make_runner(
        str(tmp_path), experiment_name='resumed', load_from=ckpt, resume=True)
    resumed.train()
    assert resumed.iter == 4
    saved = torch.load(ckpt, map_location='cpu')
    assert saved['meta']['iter'] == 2


def test_untrusted_pickles_are_still_refused(tmp_path):
    path = tmp_path / 'evil.pth'
    torch.save({'obj': pickle.PicklingError('not allow-listed')}, path)
    with pytest.raises(pickle.UnpicklingError):
        torch.load(path)


def test_kill_mid_save_leaves_a_loadable_last_checkpoint(
        tmp_path, monkeypatch):
    """The second save dies half-way through writing (as a killed process
    would); keeping one checkpoint, mmengine would already have deleted the
    first one and last_checkpoint would name a missing file."""
    put = LocalBackend.put
    saves = []

    def put_then_die(self, obj, filepath):
        saves.append(filepath)
        if len(saves) == 2:
            put(self, obj[:len(obj) // 2], filepath)
            raise KeyboardInterrupt('killed while saving')
        put(self, obj, filepath)

    monkeypatch.setattr(LocalBackend, 'put', put_then_die)
    runner, _, _ = make_toy_runner(
        tmp_path, max_iters=4, interval=2, max_keep_ckpts=1)
    with pytest.raises(KeyboardInterrupt):
        runner.train()
    last = find_latest_checkpoint(str(tmp_path))
    assert last == osp.join(tmp_path, 'iter_2.pth')
    assert torch.load(last)['meta']['iter'] == 2
    assert not osp.exists(osp.join(tmp_path, 'iter_4.pth'))


def test_resume_from_a_damaged_checkpoint_says_so(tmp_path):
    make_toy_runner(tmp_path, max_iters=4, interval=2)[0].train()
    damaged = osp.join(tmp_path, 'iter_4.pth')
    with open(damaged, 'r+b') as f:
        f.truncate(1000)
    runner, _, _ = make_toy_runner(tmp_path / 'resumed', resume_from=damaged)
    with pytest.raises(RuntimeError) as error:
        runner.train()
    message = str(error.value)
    assert damaged in message and 'truncated' in message
    assert f'--resume {osp.join(tmp_path, "iter_2.pth")}' in message


KILLED_RUN = '''
import sys
from resumable_training import make_runner
make_runner(sys.argv[1], max_iters=int(sys.argv[2]), interval=1,
            max_keep_ckpts=2)[0].train()
'''


def test_resumed_run_removes_what_a_killed_run_left(tmp_path, repo_root):
    """A run saving every iteration, keeping 2, is killed (SIGKILL) after a
    few saves; the resumed run ends with the last two checkpoints only, as an
    uninterrupted run does (mmengine's list of kept checkpoints, restored
    from the checkpoint, misses the one resumed from), and leaves the
    checkpoints of another work dir alone."""
    work, other, max_iters = tmp_path / 'work', tmp_path / 'other', 16
    other.mkdir()
    (other / 'iter_1.pth').write_bytes(b'another run')
    env = dict(
        os.environ,
        PYTHONPATH=os.pathsep.join([osp.join(repo_root, 'tests'), repo_root]))
    with open(tmp_path / 'killed.log', 'w') as log:
        command = [sys.executable, '-c', KILLED_RUN, work, str(max_iters)]
        killed = subprocess.Popen(
            command, env=env, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 120
        while not (work / 'iter_4.pth').exists() and killed.poll() is None \
                and time.monotonic() < deadline:
            time.sleep(0.01)
        killed.send_signal(signal.SIGKILL)
    assert killed.wait() == -signal.SIGKILL, \
        (tmp_path / 'killed.log').read_text()[-3000:]
    # as left by a save killed in an earlier interruption
    (work / 'iter_2.pth.partial').write_bytes(b'half a checkpoint')
    (work / 'last_checkpoint.partial').write_text('')
    resume_from = find_latest_checkpoint(str(work))

    runner, _, _ = make_toy_runner(
        work,
        max_iters=max_iters,
        interval=1,
        max_keep_ckpts=2,
        resume_from=resume_from)
    runner.train()
    assert runner.iter == max_iters > int(resume_from[:-4].split('_')[-1])
    left = [
        f.name for f in work.iterdir()
        if f.name.startswith(('iter_', 'last_checkpoint'))
    ]
    assert sorted(left) == [
        f'iter_{max_iters - 1}.pth', f'iter_{max_iters}.pth', 'last_checkpoint'
    ]
    assert (other / 'iter_1.pth').read_bytes() == b'another run'
