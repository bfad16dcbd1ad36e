"""A short real training of the SM3Det mini config learns SOI-Det-mini.

The untrained model and the same model after a few minutes of CPU training
are evaluated on the same held-out images with SOIDetMetric; the AP50 of
every part (SAR's GFL head, DOTA's and DroneVehicle's Oriented R-CNN heads)
must rise clearly. Measured values are printed (pytest -s shows them): overall
0.01 before; SAR 48.5, DOTA 21.6, DroneVehicle 52.3 after (seed 0).
"""
from mmengine.runner import Runner

from mini_training import MAX_ITERS, mini_cfg


def test_short_training_raises_every_parts_ap50(trained_mini, tmp_path):
    untrained = Runner.from_cfg(
        mini_cfg(trained_mini.data_root, str(tmp_path / 'before')))
    untrained.model.init_weights()
    before = untrained.test()
    after = {key: trained_mini.metrics[key] for key in before}

    key = 'soi_det/overall/AP50'
    print(f'\noverall AP50: untrained {100 * before[key]:.2f}, '
          f'after {MAX_ITERS} iterations {100 * after[key]:.2f}; '
          f'SAR {100 * after["soi_det/sar/AP50"]:.2f}, DOTA '
          f'{100 * after["soi_det/dota/AP50"]:.2f}, DroneVehicle '
          f'{100 * after["soi_det/dronevehicle/AP50"]:.2f}')
    for part in ('overall', 'sar', 'dota', 'dronevehicle'):
        key = f'soi_det/{part}/AP50'
        assert after[key] > before[key] + 0.05, part
    assert all(
        key in after for key in ('soi_det/overall/mAP', 'soi_det/sar/AP75',
                                 'soi_det/dota/mAP'))
