"""Test (evaluate) a checkpoint with an MMEngine config (MMRotate 1.x
behaviour).

    python tools/test.py CONFIG CHECKPOINT [--work-dir DIR] [--show-dir DIR]
        [--show] [--cfg-options k=v ...] [--launcher {none,pytorch,slurm,mpi}]

The metrics are logged and written to ``<work_dir>/test_metrics.json``; for
SOI-Det configs the summary table (overall and per dataset, mAP / AP50 /
AP75 in percent) is also printed and written to ``<work_dir>/soi_det.md``.
"""
import argparse
import json
import os
import os.path as osp

from mmengine.config import DictAction
from mmengine.dist import is_main_process
from mmengine.registry import RUNNERS
from mmengine.runner import Runner

from sm3det.evaluation import display_names, format_summary_markdown
from sm3det.utils import close_distributed, load_run_config


def parse_args():
    parser = argparse.ArgumentParser(description='Test (and eval) a model')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument(
        '--work-dir',
        help='the directory to save the file containing evaluation metrics')
    parser.add_argument(
        '--show', action='store_true', help='show prediction results')
    parser.add_argument(
        '--show-dir',
        help='directory where painted images will be saved; relative paths '
        'are taken inside the run\'s timestamped log folder')
    parser.add_argument(
        '--wait-time', type=float, default=2, help='the interval of show (s)')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override settings of the config, key=value pairs')
    parser.add_argument(
        '--launcher',
        choices=['none', 'pytorch', 'slurm', 'mpi'],
        default='none',
        help='job launcher')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args()
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args


def trigger_visualization_hook(cfg, args):
    """Make the config's VisualizationHook draw the predictions."""
    hook = cfg.default_hooks.get('visualization')
    if hook is None:
        raise RuntimeError(
            '--show / --show-dir need a `visualization=dict(type='
            '"mmdet.DetVisualizationHook")` entry in default_hooks')
    hook['draw'] = True
    if args.show:
        hook['show'] = True
        hook['wait_time'] = args.wait_time
    if args.show_dir:
        hook['test_out_dir'] = args.show_dir
    return cfg


def main():
    args = parse_args()
    cfg = load_run_config(args.config, args.cfg_options, args.launcher,
                          args.work_dir)
    cfg.load_from = args.checkpoint
    if args.show or args.show_dir:
        cfg = trigger_visualization_hook(cfg, args)

    runner = (
        Runner.from_cfg(cfg)
        if 'runner_type' not in cfg else RUNNERS.build(cfg))
    metrics = runner.test()
    if is_main_process():
        out = osp.join(cfg.work_dir, 'test_metrics.json')
        with open(out, 'w') as f:
            json.dump(
                {
                    k: float(v) if isinstance(v, (int, float)) else v
                    for k, v in metrics.items()
                },
                f,
                indent=2)
        runner.logger.info(f'metrics written to {out}')
        if any(key.endswith('overall/mAP') for key in metrics):
            evaluator = cfg.test_evaluator  # a dict, or a list of them
            tasks = evaluator.get('tasks', {}) if isinstance(evaluator,
                                                             dict) else {}
            table = format_summary_markdown(metrics, display_names(tasks))
            with open(osp.join(cfg.work_dir, 'soi_det.md'), 'w') as f:
                f.write(table)
            print(table)  # the result a user ran the command for
    close_distributed()


if __name__ == '__main__':
    main()
