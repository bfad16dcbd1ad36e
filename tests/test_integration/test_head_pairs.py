"""Every head pair of configs/head_pairs/ trains on SOI-Det-mini with DSO.

Each SOI-Det-mini config (one per pair of SAR head + OBB head) runs one
training iteration through mmengine's Runner on a freshly generated tiny
SOI-Det-mini (128 px): the real pipelines, 2:1:1 batches, SM3Det, the DSO
optimiser constructor and hook. DSO's groups are derived from the heads
(no loss list in any config): the test asserts the sub-modules of each head
type and that every loss term of the iteration lands in its head's groups.
"""
import math
import os.path as osp

import pytest
import torch
from mmdet.structures import DetDataSample
from mmengine.config import Config
from mmengine.runner import Runner

from sm3det.datasets.preparation import generate_soi_det_mini
from repository import REPO_ROOT

IMAGE_SIZE = 128
PARTS = ('sar', 'dota', 'dronevehicle')
# DSO sub-modules of each head type, as SM3Det derives them.
TWO_STAGE = ('rpn_head', 'roi_head')
SUB_MODULES = dict(
    retinanet=(),
    gfl=(),
    frcnn=TWO_STAGE,
    cascade=TWO_STAGE,
    roitrans=TWO_STAGE,
    orcnn=TWO_STAGE,
    s2anet=('bbox_head_init', 'bbox_head_refine'))
# Which loss keys each sub-module takes (RoI Transformer / Cascade R-CNN:
# 'loss_rpn_*' vs 's0.loss_cls' ...; S2A-Net: 'loss_*_init' vs
# 'loss_*_refine_0').
BELONGS = dict(
    rpn_head=lambda key: 'rpn' in key,
    roi_head=lambda key: 'rpn' not in key,
    bbox_head_init=lambda key: key.endswith('_init'),
    bbox_head_refine=lambda key: '_refine_' in key)
PAIRS = [('retinanet', 'roitrans'), ('frcnn', 'orcnn'),
         ('cascade', 'roitrans'), ('frcnn', 's2anet'), ('cascade', 's2anet'),
         ('gfl', 's2anet'), ('retinanet', 's2anet')]


def mini_config(sar: str, obb: str) -> str:
    return osp.join(
        REPO_ROOT, 'configs', 'head_pairs',
        f'sm3det-{sar}-{obb}_convnext-mini_fpn_600it_'
        'soi-det-mini.py')


def test_every_pair_has_its_configs():
    for sar, obb in PAIRS:
        for name in (f'sm3det-{sar}-{obb}_convnext-t_fpn_33k_soi-det.py',
                     f'joint-{sar}-{obb}_convnext-t_fpn_33k_soi-det.py'):
            assert osp.isfile(
                osp.join(REPO_ROOT, 'configs', 'head_pairs', name)), name
        assert osp.isfile(mini_config(sar, obb))


@pytest.fixture(autouse=True)
def plain_config_text(monkeypatch):
    """mmengine logs and dumps the config formatted by yapf: most of a
    one-iteration run's time. A repr serves the same purpose here."""
    monkeypatch.setattr(Config, 'pretty_text',
                        property(lambda cfg: repr(cfg.to_dict())))


@pytest.fixture(scope='module')
def mini_root(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('soi_det_mini'))
    generate_soi_det_mini(
        root, num_train=2, num_test=1, size=IMAGE_SIZE, seed=0)
    return root


def one_iteration_cfg(path: str, data_root: str, work_dir: str) -> Config:
    """The config reading ``data_root`` at IMAGE_SIZE, one iteration, no
    validation and no checkpoint."""
    cfg = Config.fromfile(path)
    loader = cfg.train_dataloader
    loader.num_workers = 0
    loader.persistent_workers = False
    square = (IMAGE_SIZE, IMAGE_SIZE)
    for part, dataset in zip(PARTS, loader.dataset.datasets):
        dataset.data_root = osp.join(data_root, part) + '/'
        for step in dataset.pipeline:
            if step.type == 'mmdet.Resize':
                step.scale = square
    cfg.train_cfg.update(max_iters=1, val_interval=1000)
    cfg.val_dataloader = cfg.val_cfg = cfg.val_evaluator = None
    cfg.test_dataloader = cfg.test_cfg = cfg.test_evaluator = None
    cfg.default_hooks.checkpoint = None
    cfg.default_hooks.logger.interval = 1
    cfg.work_dir = work_dir
    cfg.randomness = dict(seed=0)
    return cfg


def one_dataset_batch(dataset_name: str, size: int = 64) -> dict:
    """Two test images of one dataset, as a test dataloader gives them."""
    meta = dict(
        dataset_name=dataset_name,
        img_shape=(size, size),
        ori_shape=(size, size),
        scale_factor=(1.0, 1.0))
    return dict(
        inputs=[
            torch.randint(0, 255, (3, size, size), dtype=torch.uint8)
            for _ in range(2)
        ],
        data_samples=[
            DetDataSample(metainfo=dict(meta, img_id=i)) for i in range(2)
        ])


@pytest.mark.parametrize('sar,obb', PAIRS, ids=['-'.join(p) for p in PAIRS])
def test_pair_trains_one_iteration_with_derived_dso_groups(
        sar, obb, mini_root, tmp_path):
    runner = Runner.from_cfg(
        one_iteration_cfg(mini_config(sar, obb), mini_root, str(tmp_path)))
    runner.train()

    expected = {}
    for task, head in zip(PARTS, (sar, obb, obb)):
        expected.update({
            f'{task}.{m}' if m else task: task
            for m in SUB_MODULES[head] or ('', )
        })
    dso = next(
        hook for hook in runner.hooks if type(hook).__name__ == 'DSOHook')
    assert set(dso.loss_terms) == set(expected)
    tagged = {
        group.get('sub_module')
        for group in runner.optim_wrapper.param_groups
    }
    assert set(expected) <= tagged

    scalars = runner.message_hub.log_scalars
    assert math.isfinite(scalars['train/loss'].current())
    losses = [
        key[len('train/'):] for key in scalars
        if key.startswith(tuple(f'train/{t}.'
                                for t in PARTS)) and 'loss' in key
    ]
    groups = {
        name: [key for key in losses if dso.group_of(key) == name]
        for name in expected
    }
    # Every head loss in exactly one group of its own task, none empty.
    assert sorted(sum(groups.values(), [])) == sorted(losses)
    for name, keys in groups.items():
        assert keys and all(k.startswith(expected[name] + '.') for k in keys)
        part = name.split('.', 1)[-1]
        assert all(BELONGS.get(part, lambda key: True)(k)
                   for k in keys), (name, keys)

    model = runner.model.eval()
    with torch.no_grad():
        for task, box_dim in zip(PARTS, (4, 5, 5)):
            for sample in model.test_step(one_dataset_batch(task)):
                bboxes = sample.pred_instances.bboxes
                assert getattr(bboxes, 'tensor', bboxes).shape[-1] == box_dim
