"""Start-up time of a resumed run's data stream: mmengine's replay against a
sampler that starts at the saved position.

A run resumed at iteration N must first reach the N-th batch of its stream.
mmengine's ``IterBasedTrainLoop`` draws (loads, augments, collates) the N
finished batches; ``ResumableIterBasedTrainLoop`` calls the sampler's
``set_start(N x batch_size)``, which computes the skipped indices but loads
nothing. This tool builds a config's training data loader (its dataset,
pipeline, sampler and workers) and times, for each N, the time until the
first new batch is in hand:

* replay: ``iter(loader)`` then N + 1 ``next()`` calls. Timed for
  ``--replay-iters`` (replaying tens of thousands of batches takes hours);
  for a larger N the time is extrapolated linearly from the measured rate;
* positioned: ``set_start`` then ``iter(loader)`` and one ``next()``.

Usage:
    python tools/analysis_tools/benchmark_resume.py CONFIG
        [--iters 1000 30000] [--replay-iters 200] [--num-workers 2]
"""
import argparse
import time

from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmengine.runner import Runner


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config')
    parser.add_argument(
        '--iters',
        type=int,
        nargs='+',
        default=[1000, 30000],
        help='resume iterations N')
    parser.add_argument(
        '--replay-iters',
        type=int,
        default=200,
        help='batches replayed to time the replay rate')
    parser.add_argument(
        '--num-workers',
        type=int,
        default=None,
        help='data-loader workers (default: the config)')
    return parser.parse_args()


def build_loader(cfg):
    loader_cfg = cfg.train_dataloader.copy()
    # Each measurement builds a fresh loader (cold workers, as a new job).
    loader_cfg['persistent_workers'] = False
    return Runner.build_dataloader(loader_cfg, seed=0)


def seconds_to_batch(loader, replayed: int) -> float:
    start = time.perf_counter()
    iterator = iter(loader)
    for _ in range(replayed + 1):
        next(iterator)
    return time.perf_counter() - start


def main():
    args = parse_args()
    cfg = Config.fromfile(args.config)
    init_default_scope(cfg.get('default_scope', 'mmrotate'))
    for module in cfg.get('custom_imports', {}).get('imports', []):
        __import__(module)
    if args.num_workers is not None:
        cfg.train_dataloader.num_workers = args.num_workers
    loader = build_loader(cfg)
    batch_size = loader.batch_size
    if not hasattr(loader.sampler, 'set_start'):
        raise SystemExit(f'{type(loader.sampler).__name__} cannot start at a '
                         'position (no set_start)')

    first = seconds_to_batch(loader, 0)
    replay = seconds_to_batch(build_loader(cfg), args.replay_iters)
    rate = (replay - first) / args.replay_iters  # seconds per replayed batch
    print(f'config: {args.config}')
    print(f'batch size {batch_size}, {loader.num_workers} workers; '
          f'first batch of a fresh loader: {first:.2f} s; replay: '
          f'{args.replay_iters} batches in {replay:.1f} s '
          f'({1e3 * rate:.1f} ms per batch)')
    print('| resume at iteration | replay (mmengine) | positioned sampler |')
    print('|---|---|---|')
    for n in args.iters:
        loader = build_loader(cfg)
        loader.sampler.set_start(n * batch_size)
        positioned = seconds_to_batch(loader, 0)
        replayed = first + n * rate
        note = '' if n <= args.replay_iters else ' (extrapolated)'
        print(f'| {n} | {replayed:.1f} s{note} | {positioned:.2f} s |')


if __name__ == '__main__':
    main()
