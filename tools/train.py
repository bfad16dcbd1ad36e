"""Train a detector with an MMEngine config (MMRotate 1.x behaviour).

    python tools/train.py CONFIG [--work-dir DIR] [--resume [CKPT]] [--amp]
        [--cfg-options k=v ...] [--launcher {none,pytorch,slurm,mpi}]

Multi-GPU / multi-process runs go through ``tools/dist_train.sh`` or
``tools/slurm_train.sh``. Without a GPU, distributed runs use the gloo backend.
"""
import argparse
import os

from mmengine.config import DictAction
from mmengine.logging import print_log
from mmengine.registry import RUNNERS
from mmengine.runner import Runner

from sm3det.utils import close_distributed, load_run_config


def parse_args():
    parser = argparse.ArgumentParser(description='Train a detector')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--work-dir', help='the dir to save logs and models')
    parser.add_argument(
        '--amp',
        action='store_true',
        help='enable automatic-mixed-precision training (dynamic loss scale)')
    parser.add_argument(
        '--resume',
        nargs='?',
        type=str,
        const='auto',
        help='resume from the given checkpoint, or from the latest checkpoint '
        'in the work dir when no path is given')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override settings of the config, key=value pairs, e.g. '
        'train_cfg.max_iters=100')
    parser.add_argument(
        '--launcher',
        choices=['none', 'pytorch', 'slurm', 'mpi'],
        default='none',
        help='job launcher')
    # torch.distributed.launch passes --local-rank; torchrun sets LOCAL_RANK.
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args()
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args


def main():
    args = parse_args()
    cfg = load_run_config(args.config, args.cfg_options, args.launcher,
                          args.work_dir)

    if args.amp:
        # an fp32 wrapper -> its AMP twin (SM3Det's skips non-finite steps)
        amp_types = dict(
            OptimWrapper='AmpOptimWrapper',
            SkipNonFiniteOptimWrapper='SkipNonFiniteAmpOptimWrapper')
        optim_wrapper = cfg.optim_wrapper.type
        if optim_wrapper in amp_types.values():
            print_log(
                'AMP training is already enabled in the config.',
                logger='current')
        else:
            assert optim_wrapper in amp_types, (
                '`--amp` is only supported with optim_wrapper type '
                f'{" or ".join(amp_types)}, but got `{optim_wrapper}`.')
            cfg.optim_wrapper.type = amp_types[optim_wrapper]
            cfg.optim_wrapper.loss_scale = 'dynamic'

    if args.resume == 'auto':
        cfg.resume = True
        cfg.load_from = None
    elif args.resume is not None:
        cfg.resume = True
        cfg.load_from = args.resume

    runner = (
        Runner.from_cfg(cfg)
        if 'runner_type' not in cfg else RUNNERS.build(cfg))
    runner.train()
    close_distributed()


if __name__ == '__main__':
    main()
