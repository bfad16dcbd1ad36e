"""``tools/dist_train.sh CONFIG 2`` runs two processes that stay in step.

On a machine without GPU the launcher falls back to gloo and a CPU DDP. Each
rank trains on different samples; DDP averages the gradients, so after
training both ranks must hold identical weights that differ from the start.
"""
import json
import os
import subprocess

import pytest
import torch

TOY_MODULE = '''
import json, os
import torch
from mmengine.hooks import Hook
from mmengine.model import BaseModel
from mmengine.dist import get_rank
from mmrotate.registry import DATASETS, HOOKS, MODELS


@MODELS.register_module()
class ToyRegressor(BaseModel):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.linear = torch.nn.Linear(2, 1)

    def forward(self, inputs, data_samples=None, mode='tensor'):
        out = self.linear(torch.stack(inputs))
        return dict(loss=(out - torch.stack(data_samples)).pow(2).mean())


@DATASETS.register_module()
class ToyData(torch.utils.data.Dataset):
    metainfo = dict()

    def __len__(self):
        return 64

    def __getitem__(self, i):
        x = torch.tensor([i / 64, 1.0])
        return dict(inputs=x, data_samples=(3 * x[:1] - 1))


@HOOKS.register_module()
class DumpWeights(Hook):
    def after_run(self, runner):
        model = getattr(runner.model, 'module', runner.model)
        weights = [p.tolist() for p in model.parameters()]
        path = os.path.join(runner.work_dir, f'rank{get_rank()}.json')
        with open(path, 'w') as f:
            json.dump(dict(weights=weights, world=runner.world_size), f)
'''

CONFIG = '''
default_scope = 'mmrotate'
custom_imports = dict(
    imports=['sm3det', 'toy_dist'], allow_failed_imports=False)
model = dict(type='ToyRegressor')
train_dataloader = dict(
    batch_size=4, num_workers=0,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(type='ToyData'))
optim_wrapper = dict(optimizer=dict(type='SGD', lr=0.1))
train_cfg = dict(type='IterBasedTrainLoop', max_iters=6)
custom_hooks = [dict(type='DumpWeights')]
default_hooks = dict(logger=dict(type='LoggerHook', interval=1))
env_cfg = dict(dist_cfg=dict(backend='nccl'))
'''


@pytest.mark.skipif(torch.cuda.is_available(), reason='tests the CPU path')
def test_two_cpu_processes_stay_in_step(tmp_path, repo_root):
    (tmp_path / 'toy_dist.py').write_text(TOY_MODULE)
    (tmp_path / 'toy_config.py').write_text(CONFIG)
    work_dir = tmp_path / 'work'
    env = dict(
        os.environ,
        PORT='29533',
        PYTHONPATH=os.pathsep.join([str(tmp_path), repo_root]))
    proc = subprocess.run([
        'bash',
        os.path.join(repo_root, 'tools', 'dist_train.sh'),
        str(tmp_path / 'toy_config.py'), '2', '--work-dir',
        str(work_dir)
    ],
                          env=env,
                          cwd=tmp_path,
                          capture_output=True,
                          text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]

    ranks = [
        json.loads((work_dir / f'rank{r}.json').read_text()) for r in (0, 1)
    ]
    assert ranks[0]['world'] == ranks[1]['world'] == 2
    assert ranks[0]['weights'] == ranks[1]['weights']
    torch.manual_seed(0)
    initial = [p.tolist() for p in torch.nn.Linear(2, 1).parameters()]
    assert ranks[0]['weights'] != initial
