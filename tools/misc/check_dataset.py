"""Check a config's data per part/split: images, objects, classes, problems.

Reads every annotation file the config's train/val datasets point to (with
the datasets' own checks: missing or unreadable images, empty or malformed
annotation files, polygons with fewer than 4 points or zero area, boxes outside
the image, unknown class names) and prints a report. ``--decode`` also decodes
every image (slow; finds truncated files whose header is fine). Exits with
status 1 when it found a problem.

    python tools/misc/check_dataset.py configs/_base_/datasets/soi_det.py
"""
import argparse
import sys
from collections import Counter

import cv2
from mmengine.config import Config
from mmengine.registry import init_default_scope

# isort: off
import sm3det  # noqa: F401  (registers the datasets; must precede mmrotate)
from mmrotate.registry import DATASETS  # noqa: E402
# isort: on


def part_configs(dataset_cfg):
    """The per-part dataset configs inside a (possibly concatenated) dataset
    config."""
    if dataset_cfg.get('type') == 'ConcatDataset':
        return list(dataset_cfg.datasets)
    return [dataset_cfg]


def check_part(part_cfg, decode: bool, max_listed: int):
    """Build one part's dataset without pipeline and filter; print its report.

    Returns the number of problems found.
    """
    part_cfg = dict(part_cfg, pipeline=[], filter_cfg=None, lazy_init=False)
    try:
        dataset = DATASETS.build(part_cfg)
    except Exception as e:  # noqa: BLE001 - report the dataset's own message
        print(f'  {part_cfg.get("type")} at {part_cfg.get("data_root")}: '
              f'FAILED: {e}')
        return 1
    classes = dataset.metainfo['classes']
    per_class, ignored, without_objects = Counter(), 0, 0
    problems = [
        f'{path}: skipped {what}: {reason}'
        for path, what, reason in dataset.skip_log.entries
    ]
    for i in range(len(dataset)):
        info = dataset.get_data_info(i)
        without_objects += not info['instances']
        for instance in info['instances']:
            per_class[classes[instance['bbox_label']]] += 1
            ignored += instance['ignore_flag']
        if decode and cv2.imread(info['img_path'],
                                 cv2.IMREAD_UNCHANGED) is None:
            problems.append(f'{info["img_path"]}: image does not decode')
    print(f'  {dataset.dataset_name}: {len(dataset)} images, '
          f'{sum(per_class.values())} objects ({ignored} ignored), '
          f'{without_objects} images without objects')
    print('    ' + ', '.join(f'{c}: {per_class[c]}' for c in classes))
    missing = [c for c in classes if not per_class[c]]
    if missing:
        print(f'    classes without any object: {missing}')
    if problems:
        reasons = Counter(p.split(': ', 1)[1].split(' (')[0] for p in problems)
        print(f'    {len(problems)} problems: ' +
              '; '.join(f'{n} x {r}' for r, n in reasons.most_common()))
        for problem in problems[:max_listed]:
            print(f'      {problem}')
        if len(problems) > max_listed:
            print(f'      ... {len(problems) - max_listed} more')
    return len(problems)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config')
    parser.add_argument(
        '--splits',
        nargs='+',
        default=['train', 'val'],
        choices=['train', 'val', 'test'])
    parser.add_argument(
        '--decode', action='store_true', help='decode every image too')
    parser.add_argument(
        '--max-listed', type=int, default=20, help='problems listed per part')
    args = parser.parse_args()
    cfg = Config.fromfile(args.config)
    init_default_scope(cfg.get('default_scope', 'mmrotate'))
    problems = 0
    for split in args.splits:
        print(f'{split}:')
        for part_cfg in part_configs(cfg[f'{split}_dataloader'].dataset):
            problems += check_part(part_cfg, args.decode, args.max_listed)
    print(f'{problems} problems found' if problems else 'no problems found')
    sys.exit(1 if problems else 0)


if __name__ == '__main__':
    main()
