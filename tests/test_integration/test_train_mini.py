"""A short real training of the SM3Det mini config learns SOI-Det-mini.

The untrained model and the same model after a few minutes of CPU training
are evaluated on the same held-out images with SOIDetMetric; the AP50 of
every part (SAR's GFL head, DOTA's and DroneVehicle's Oriented R-CNN heads)
must rise clearly. Measured values are printed (pytest -s shows them): overall
0.01 before; SAR 48.5, DOTA 21.6, DroneVehicle 52.3 after (seed 0).
"""
import os.path as osp

from mmengine.config import Config
from mmengine.runner import Runner
from tool_loader import REPO_ROOT, load_tool

CONFIG = 'configs/sm3det/sm3det_convnext-mini_fpn_600it_soi-det-mini.py'
MAX_ITERS = 120


def generate_mini_set(root):
    module = load_tool('tools/misc/generate_soi_det_mini.py')
    module.generate(root, num_train=64, num_test=12, size=256, seed=1)


def mini_cfg(data_root, work_dir):
    cfg = Config.fromfile(osp.join(REPO_ROOT, CONFIG))
    for loader in (cfg.train_dataloader, cfg.val_dataloader,
                   cfg.test_dataloader):
        loader.num_workers = 0
        loader.persistent_workers = False
        for part, dataset in zip(('sar', 'dota', 'dronevehicle'),
                                 loader.dataset.datasets):
            dataset.data_root = osp.join(data_root, part) + '/'
    cfg.train_cfg.max_iters = cfg.train_cfg.val_interval = MAX_ITERS
    cfg.param_scheduler[1].update(end=MAX_ITERS, milestones=[100])
    cfg.default_hooks.checkpoint.interval = MAX_ITERS
    cfg.default_hooks.logger.interval = 20
    cfg.work_dir = work_dir
    cfg.randomness = dict(seed=0)
    return cfg


def test_short_training_raises_every_parts_ap50(tmp_path):
    data_root = str(tmp_path / 'soi_det_mini')
    generate_mini_set(data_root)

    untrained = Runner.from_cfg(mini_cfg(data_root, str(tmp_path / 'before')))
    untrained.model.init_weights()
    before = untrained.test()

    trainer = Runner.from_cfg(mini_cfg(data_root, str(tmp_path / 'after')))
    trainer.train()  # validates once at the end
    after = {key: trainer.message_hub.get_scalar(f'val/{key}').current()
             for key in before}

    key = 'soi_det/overall/AP50'
    print(f'\noverall AP50: untrained {100 * before[key]:.2f}, '
          f'after {MAX_ITERS} iterations {100 * after[key]:.2f}; '
          f'SAR {100 * after["soi_det/sar/AP50"]:.2f}, DOTA '
          f'{100 * after["soi_det/dota/AP50"]:.2f}, DroneVehicle '
          f'{100 * after["soi_det/dronevehicle/AP50"]:.2f}')
    for part in ('overall', 'sar', 'dota', 'dronevehicle'):
        key = f'soi_det/{part}/AP50'
        assert after[key] > before[key] + 0.05, part
    assert all(key in after for key in (
        'soi_det/overall/mAP', 'soi_det/sar/AP75', 'soi_det/dota/mAP'))
