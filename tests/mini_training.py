"""One short real training of the SM3Det mini config, shared by the tests.

The integration test (does training learn?) and the inference tests (do
large-image predictions agree with per-image ones?) need the same briefly
trained model; ``tests/conftest.py``'s session fixture ``trained_mini`` runs
:func:`train_mini` once per test session and hands both the result.
"""
import os.path as osp
from typing import NamedTuple

from mmengine.config import Config
from mmengine.runner import Runner

from sm3det.datasets.preparation import generate_soi_det_mini
from repository import REPO_ROOT

CONFIG = 'configs/sm3det/sm3det_convnext-mini_fpn_600it_soi-det-mini.py'
MAX_ITERS = 120
PARTS = ('sar', 'dota', 'dronevehicle')


class TrainedMini(NamedTuple):
    """What :func:`train_mini` leaves: the config it trained (reading
    ``data_root``), its last checkpoint and the validation metrics at the
    end (``soi_det/<part>/AP50`` ...)."""
    cfg: Config
    checkpoint: str
    data_root: str
    metrics: dict


def generate_mini_set(root: str) -> None:
    generate_soi_det_mini(root, num_train=64, num_test=12, size=256, seed=1)


def mini_cfg(data_root: str, work_dir: str) -> Config:
    cfg = Config.fromfile(osp.join(REPO_ROOT, CONFIG))
    for loader in (cfg.train_dataloader, cfg.val_dataloader,
                   cfg.test_dataloader):
        loader.num_workers = 0
        loader.persistent_workers = False
        for part, dataset in zip(PARTS, loader.dataset.datasets):
            dataset.data_root = osp.join(data_root, part) + '/'
    cfg.train_cfg.max_iters = cfg.train_cfg.val_interval = MAX_ITERS
    cfg.param_scheduler[1].update(end=MAX_ITERS, milestones=[100])
    cfg.default_hooks.checkpoint.interval = MAX_ITERS
    cfg.default_hooks.logger.interval = 20
    cfg.work_dir = work_dir
    cfg.randomness = dict(seed=0)
    return cfg


def train_mini(root: str) -> TrainedMini:
    """Generate SOI-Det-mini under ``root`` and train MAX_ITERS iterations
    (about a minute on 2 cores); validates once at the end."""
    data_root = osp.join(root, 'soi_det_mini')
    generate_mini_set(data_root)
    cfg = mini_cfg(data_root, osp.join(root, 'train'))
    trainer = Runner.from_cfg(cfg)
    trainer.train()
    metrics = {
        key[len('val/'):]: value.current()
        for key, value in trainer.message_hub.log_scalars.items()
        if key.startswith('val/')
    }
    checkpoint = osp.join(cfg.work_dir, f'iter_{MAX_ITERS}.pth')
    assert osp.isfile(checkpoint), f'training left no {checkpoint}'
    return TrainedMini(cfg, checkpoint, data_root, metrics)
