"""Sliding-window inference speed (batched vs one patch at a time) and the
peak memory of a large image read window by window.

    python tools/analysis_tools/benchmark_inference.py CONFIG CHECKPOINT \\
        [--task dota] [--tile data/soi_det_mini/dota/val/images/P0000.png]

Both scenes are the tile image repeated (so that there is something to
detect), written as ``.npy`` into ``--work-dir``:

* speed: a ``--size`` px scene in patches of the task's test scale with a
  quarter overlap, ``--batch-size`` patches per forward pass against 1;
  seconds per megapixel of the scene (after one warm-up patch batch);
* memory: a ``--mem-size`` px scene (``--mem-patch`` px patches, resized to
  the test scale by the pipeline) and one of half that side, read a window
  at a time; the peak of numpy allocations (tracemalloc) and of the
  process's resident memory above what it held before, against the scenes'
  own sizes (a peak that does not grow with the scene is the point).
"""
import argparse
import os
import os.path as osp
import resource
import sys
import time
import tracemalloc

import cv2
import numpy as np
import torch

sys.path.insert(0, osp.join(osp.dirname(osp.abspath(__file__)), '..', '..'))
from sm3det.apis import SM3DetInferencer  # noqa: E402


def tiled_scene(path: str, tile: np.ndarray, size: int) -> str:
    """A (size, size, 3) .npy of ``tile`` repeated, written row by row with
    plain writes (a memory map would keep the written pages resident)."""
    th, tw = tile.shape[:2]
    row = np.tile(tile, (1, -(-size // tw), 1))[:, :size]
    with open(path, 'wb') as f:
        np.lib.format.write_array_header_1_0(
            f,
            dict(
                descr=np.lib.format.dtype_to_descr(tile.dtype),
                fortran_order=False,
                shape=(size, size, 3)))
        for y in range(0, size, th):
            f.write(np.ascontiguousarray(row[:min(th, size - y)]).tobytes())
    return path


def rss_mib() -> float:
    """Current resident memory of this process (MiB)."""
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith('VmRSS:'):
                return int(line.split()[1]) / 1024
    raise RuntimeError('no VmRSS in /proc/self/status')


def seconds(inferencer, path, **kwargs) -> float:
    start = time.perf_counter()
    inferencer(path, sliding_window=True, **kwargs)
    return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config')
    parser.add_argument('checkpoint')
    parser.add_argument('--task', default='dota')
    parser.add_argument(
        '--tile', default='data/soi_det_mini/dota/val/images/P0000.png')
    parser.add_argument(
        '--size', type=int, default=2048, help='side of the speed scene (px)')
    parser.add_argument('--batch-size', type=int, default=8)
    parser.add_argument(
        '--mem-size',
        type=int,
        default=8192,
        help='side of the memory scene (px)')
    parser.add_argument('--mem-patch', type=int, default=1024)
    parser.add_argument('--work-dir', default='work_dirs/benchmark_inference')
    args = parser.parse_args()

    tile = cv2.imread(args.tile, cv2.IMREAD_COLOR)
    if tile is None:
        parser.error(f'cannot read --tile {args.tile}')
    os.makedirs(args.work_dir, exist_ok=True)
    inferencer = SM3DetInferencer(
        args.config, args.checkpoint, task=args.task, device='cpu')

    # warm-up: the first forward pass allocates torch's own buffers
    inferencer(tile, sliding_window=True, batch_size=args.batch_size)
    sizes = (args.mem_size // 2, args.mem_size)
    paths = [
        tiled_scene(osp.join(args.work_dir, f'scene_{size}.npy'), tile, size)
        for size in sizes
    ]
    before = rss_mib()
    memory = []
    for size, path in zip(sizes, paths):
        tracemalloc.start()
        pred = inferencer(
            path,
            sliding_window=True,
            patch_size=args.mem_patch,
            batch_size=args.batch_size,
            return_datasample=True)['predictions'][0]
        numpy_peak = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
        rss_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        memory.append((size, pred.num_patches, len(pred.pred_instances),
                       numpy_peak, rss_peak - before))

    speed_path = tiled_scene(
        osp.join(args.work_dir, 'speed_scene.npy'), tile, args.size)
    patch = inferencer.default_patch_size()
    batched = seconds(inferencer, speed_path, batch_size=args.batch_size)
    single = seconds(inferencer, speed_path, batch_size=1)
    megapixels = args.size**2 / 1e6

    print(f'task {args.task}, {patch} px patches, {patch // 4} px overlap, '
          f'{args.size} x {args.size} scene ({megapixels:.1f} MP), '
          f'torch threads {torch.get_num_threads()}')
    print(f'| mode | s / MP | total s |\n|---|---|---|\n'
          f'| batches of {args.batch_size} patches | '
          f'{batched / megapixels:.2f} | {batched:.1f} |\n'
          f'| one patch at a time | {single / megapixels:.2f} | '
          f'{single:.1f} |')
    print(f'\nmemory ({args.mem_patch} px patches, {args.batch_size} at a '
          f'time; resident peak above the {before:.0f} MiB held after '
          'the warm-up):\n| .npy scene | decoded size MiB | patches | '
          'detections | numpy peak MiB | resident peak MiB |\n'
          '|---|---|---|---|---|---|')
    for size, patches, dets, numpy_peak, rss_peak in memory:
        print(f'| {size} x {size} | {size**2 * 3 / 2**20:.0f} | {patches} '
              f'| {dets} | {numpy_peak:.1f} | {rss_peak:.0f} |')


if __name__ == '__main__':
    main()
