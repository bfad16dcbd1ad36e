"""A Runner saves a checkpoint and resumes from it under torch >= 2.6.

torch loads with ``weights_only=True`` by default; ``sm3det.compat``
allow-lists the classes mmengine stores, so resuming works while files with
other pickled objects are still refused.
"""
import os.path as osp
import pickle

import pytest
import torch
from mmengine.model import BaseModel
from mmengine.runner import Runner
from torch import nn
from torch.utils.data import Dataset


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
            dataset=ToyDataset(), sampler=dict(type='InfiniteSampler'),
            batch_size=4, num_workers=0),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.01)),
        train_cfg=dict(type='IterBasedTrainLoop', max_iters=4),
        default_hooks=dict(checkpoint=dict(
            type='CheckpointHook', by_epoch=False, interval=2)),
        default_scope='mmrotate',
        **kwargs)


def test_save_and_resume(tmp_path):
    first = make_runner(str(tmp_path), experiment_name='first')
    first.train()
    ckpt = osp.join(tmp_path, 'iter_2.pth')
    assert osp.exists(ckpt)

    resumed = make_runner(str(tmp_path), experiment_name='resumed',
                          load_from=ckpt, resume=True)
    resumed.train()
    assert resumed.iter == 4
    saved = torch.load(ckpt, map_location='cpu')
    assert saved['meta']['iter'] == 2


def test_untrusted_pickles_are_still_refused(tmp_path):
    path = tmp_path / 'evil.pth'
    torch.save({'obj': pickle.PicklingError('not allow-listed')}, path)
    with pytest.raises(pickle.UnpicklingError):
        torch.load(path)
