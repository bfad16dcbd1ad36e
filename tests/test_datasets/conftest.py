"""A tiny SOI-Det-mini, generated once per test session, and the mini
config reading it."""
import os.path as osp

import pytest

from sm3det.datasets.preparation import generate_soi_det_mini
from repository import REPO_ROOT
from soi_det_mini_helpers import NUM_TEST, NUM_TRAIN


@pytest.fixture(scope='session')
def mini_root(tmp_path_factory):
    """SOI-Det-mini with 8 training and 4 test images per part, 256 px."""
    root = str(tmp_path_factory.mktemp('soi_det_mini'))
    generate_soi_det_mini(
        root, num_train=NUM_TRAIN, num_test=NUM_TEST, size=256, seed=0)
    return root


@pytest.fixture
def mini_config(mini_root):
    """configs/_base_/datasets/soi_det_mini.py reading the session's mini
    set, no workers."""
    from mmengine.config import Config
    cfg = Config.fromfile(
        osp.join(REPO_ROOT, 'configs/_base_/datasets/soi_det_mini.py'))
    for loader in (cfg.train_dataloader, cfg.val_dataloader):
        loader.num_workers = 0
        loader.persistent_workers = False
        for part, dataset in zip(('sar', 'dota', 'dronevehicle'),
                                 loader.dataset.datasets):
            dataset.data_root = osp.join(mini_root, part) + '/'
    return cfg
