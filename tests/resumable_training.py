"""A toy multi-source training run with everything that makes a resume
inexact: MoE gating noise (sm3det's ``GridMoE``), drop path, a random
augmentation (NumPy and Python's ``random``, as mmcv's transforms), 2:1:1
batches from three sources, DSO and AdamW. Shared by the resume, checkpoint
and non-finite guard tests.
"""
import math
import random
from collections import Counter

import numpy as np
import torch
from mmcv.cnn.bricks import DropPath
from mmengine.dataset import BaseDataset, pseudo_collate
from mmengine.hooks import Hook
from mmengine.model import BaseModel
from mmengine.runner import Runner
from mmengine.structures import BaseDataElement
from torch import nn

from sm3det.datasets import SeededConcatDataset
from sm3det.engine import DSOHook, NonFiniteGuardHook
from sm3det.models.layers import GridMoE

SOURCES = ('a', 'b', 'c')
LOSS_TERMS = dict(head_a=['a.loss'], head_b=['b.loss'], head_c=['c.loss'])


class ToyPart(BaseDataset):
    """One source: 8 random 4x6x6 images, their target a per-channel mean.

    ``loads`` counts the samples prepared in this process; ``poisoned``
    holds sample numbers whose target is NaN.
    """

    loads = Counter()
    poisoned = set()

    def __init__(self, source: str):
        self.source = source
        super().__init__(pipeline=[self.augment], serialize_data=False)

    def load_data_list(self):
        generator = torch.Generator().manual_seed(ord(self.source))
        return [
            dict(
                img=torch.rand(4, 6, 6, generator=generator),
                img_path=f'{self.source}/{i:02d}.png',
                number=i) for i in range(8)
        ]

    def augment(self, results):
        ToyPart.loads[self.source] += 1
        img = results['img']
        if np.random.rand() < 0.5:  # as mmcv's RandomFlip
            img = img.flip(-1)
        img = img + random.gauss(0, 0.1)  # photometric jitter
        target = img.mean((1, 2))
        if (self.source, results['number']) in ToyPart.poisoned:
            target = target * math.nan
        sample = BaseDataElement(
            metainfo=dict(img_path=results['img_path'], source=self.source))
        sample.target = target
        return dict(inputs=img, data_samples=sample)


class ToyMoEModel(BaseModel):
    """Conv stem, noisy-gated GridMoE, drop path, one head per source."""

    def __init__(self):
        super().__init__()
        with torch.random.fork_rng():  # the same weights, the run's seed
            torch.manual_seed(0)
            self.stem = nn.Conv2d(4, 8, 3, padding=1)
            self.moe = GridMoE(
                in_channels=8,
                num_experts=4,
                top_k=2,
                expert_cfg=dict(
                    type='ConvNeXtMLP', in_channels=8, mlp_ratio=2))
            for source in SOURCES:
                setattr(self, f'head_{source}', nn.Linear(8, 4))
        self.drop_path = DropPath(0.5)

    def forward(self, inputs, data_samples=None, mode='tensor'):
        x = self.stem(torch.stack(inputs)).permute(0, 2, 3, 1)
        x = x + self.drop_path(self.moe(x))
        features = x.mean((1, 2))
        losses = {}
        for source in SOURCES:
            rows = [
                i for i, s in enumerate(data_samples) if s.source == source
            ]
            if rows:
                out = getattr(self, f'head_{source}')(features[rows])
                target = torch.stack([data_samples[i].target for i in rows])
                losses[f'{source}.loss'] = (out - target).pow(2).mean()
        losses['loss_balance'] = self.moe.last_balance_loss
        return losses


class RecordLosses(Hook):
    """Keeps every iteration's logged losses (floats) in ``losses``."""

    def __init__(self):
        self.losses = []

    def after_train_iter(self,
                         runner,
                         batch_idx,
                         data_batch=None,
                         outputs=None):
        self.losses.append({k: float(v.detach()) for k, v in outputs.items()})


def make_dataset():
    return SeededConcatDataset(
        datasets=[ToyPart(source) for source in SOURCES])


def make_runner(work_dir,
                max_iters=6,
                num_workers=0,
                resume_from=None,
                interval=3,
                max_keep_ckpts=-1,
                custom_hooks=(),
                optim_type='SkipNonFiniteOptimWrapper',
                **kwargs):
    """A Runner over the toy parts; returns (runner, dso_hook, recorder)."""
    dso = DSOHook(LOSS_TERMS, alpha=0.5, warmup_iters=2)
    recorder = RecordLosses()
    runner = Runner(
        model=ToyMoEModel(),
        work_dir=str(work_dir),
        train_dataloader=dict(
            dataset=make_dataset(),
            sampler=dict(
                type='ResumableMultiSourceSampler',
                batch_size=4,
                source_ratio=[2, 1, 1]),
            batch_size=4,
            num_workers=num_workers,
            persistent_workers=num_workers > 0,
            collate_fn=pseudo_collate),
        optim_wrapper=dict(
            type=optim_type,
            optimizer=dict(type='AdamW', lr=0.01),
            constructor='SubModuleOptimWrapperConstructor',
            paramwise_cfg=dict(sub_modules={name: name
                                            for name in LOSS_TERMS})),
        param_scheduler=dict(
            type='LinearLR', start_factor=0.5, by_epoch=False, begin=0, end=4),
        train_cfg=dict(
            type='ResumableIterBasedTrainLoop', max_iters=max_iters),
        default_hooks=dict(
            logger=dict(type='LoggerHook', interval=1),
            checkpoint=dict(
                type='ResumableCheckpointHook',
                by_epoch=False,
                interval=interval,
                max_keep_ckpts=max_keep_ckpts)),
        custom_hooks=[
            dso,
            NonFiniteGuardHook(max_consecutive_skips=2), recorder,
            *custom_hooks
        ],
        randomness=dict(seed=0, deterministic=True),
        load_from=resume_from,
        resume=resume_from is not None,
        default_scope='mmrotate',
        **kwargs)
    return runner, dso, recorder


def assert_same_state(first, second):
    """Parameters, optimizer state (tensors bit-equal) equal."""
    params = dict(first.model.named_parameters())
    for name, param in second.model.named_parameters():
        assert torch.equal(params[name], param), name
    assert_equal_nested(first.optim_wrapper.state_dict(),
                        second.optim_wrapper.state_dict())


def assert_equal_nested(a, b, where='optimizer'):
    if isinstance(a, torch.Tensor):
        assert torch.equal(a, b), where
    elif isinstance(a, dict):
        assert a.keys() == b.keys(), where
        for key in a:
            assert_equal_nested(a[key], b[key], f'{where}.{key}')
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            assert_equal_nested(x, y, f'{where}[{i}]')
    else:
        assert a == b, where
