"""Export one task of a trained SM3Det: its head and the experts it uses.

    python tools/model_converters/export_task.py CONFIG CHECKPOINT --task sar \
        [--split val|test] [--num-images 50] [--threshold 0] \
        [--out-dir DIR] [--cfg-options KEY=VALUE ...]

Routes ``--num-images`` images of the task's validation (or test) set
through the backbone, keeps in every MoE layer the experts whose share of
the task's routing slots is above ``--threshold`` (0: chosen at least once;
at least top-k per layer), drops the other tasks' heads and writes
``<out-dir>/<config name>_<task>.py`` and ``.pth``: a single-task config
and checkpoint for ``tools/test.py`` (the task's test set) and
``SM3DetInferencer`` (see ``sm3det/apis/task_export.py``).
"""
import argparse
import os
import os.path as osp

import torch
from mmengine.config import Config, DictAction
from mmengine.logging import print_log
from mmengine.registry import init_default_scope

from sm3det.apis.task_export import export_task


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Export one task of an SM3Det model: its head and the '
        'experts its images use')
    parser.add_argument('config')
    parser.add_argument('checkpoint')
    parser.add_argument(
        '--task',
        required=True,
        help='the task (dataset_name) to keep, e.g. sar')
    parser.add_argument(
        '--split',
        choices=('val', 'test'),
        default='val',
        help="whose loader gives the calibration images")
    parser.add_argument(
        '--num-images',
        type=int,
        default=50,
        help='calibration images (evenly spaced)')
    parser.add_argument(
        '--threshold',
        type=float,
        default=0.,
        help='keep an expert when its share of the task\'s routing slots in '
        'a layer is above this (0: chosen at least once)')
    parser.add_argument('--batch-size', type=int, default=1)
    parser.add_argument('--out-dir', default='work_dirs/export')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override config settings, KEY=VALUE')
    return parser.parse_args(argv)


def report(export, task: str) -> str:
    """The kept experts per layer and the parameter counts, as text."""
    lines = [
        f'Export of task {task!r}: experts kept per MoE layer '
        '(share of the task\'s routing slots, %)'
    ]
    for name, share in export.expert_shares.items():
        kept = export.kept_experts.get(name, list(range(len(share))))
        shares = ' '.join(f'{100 * s:5.1f}' for s in share)
        lines.append(f'  {name:>20s}: {len(kept)}/{len(share)} kept '
                     f'{kept}  [{shares}]')
    lines.append(f'Parameters: {export.params_before / 1e6:.3f}M -> '
                 f'{export.params_after / 1e6:.3f}M')
    return '\n'.join(lines)


def main(argv=None):
    args = parse_args(argv)
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    init_default_scope(cfg.get('default_scope', 'mmrotate'))

    export = export_task(cfg, args.checkpoint, args.task, args.split,
                         args.num_images, args.threshold, args.batch_size)
    os.makedirs(args.out_dir, exist_ok=True)
    stem = osp.join(
        args.out_dir,
        f'{osp.splitext(osp.basename(args.config))[0]}_{args.task}')
    with open(f'{stem}.py', 'w') as f:
        f.write(f'# Export of task {args.task!r} of {args.config} '
                f'({args.checkpoint}):\n# tools/model_converters/'
                'export_task.py, threshold '
                f'{args.threshold}, {args.num_images} {args.split} images.\n' +
                export.config.pretty_text)
    torch.save(export.checkpoint, f'{stem}.pth')
    print_log(report(export, args.task), logger='current')
    print_log(f'Wrote {stem}.py and {stem}.pth', logger='current')
    return export, f'{stem}.py', f'{stem}.pth'


if __name__ == '__main__':
    main()
