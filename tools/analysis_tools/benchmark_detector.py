"""Training and test speed of the whole detector: SM3Det-T against the dense
joint model, on synthetic SOI-Det-shaped batches.

Each model is built from its paper-scale config (random weights: speed only)
and trained for ``--iters`` iterations on batches of ``--batch`` images of
``--size`` x ``--size`` pixels in SOI-Det's 2:1:1 mix (SAR with horizontal
boxes, DOTA and DroneVehicle with oriented ones; per image about as many
boxes as the real data sets have: SAR 6, DOTA 60, DroneVehicle 15), with the
config's optimizer and, on CUDA, its AMP wrapper in ``--dtype``. Then a test
pass over the same batches without boxes. Prints, per model, the median
seconds per training iteration (after ``--warmup``), peak GPU memory and test
images per second, and the ratio SM3Det / joint (the paper's FLOPs: 487G /
403G = 1.21).

Usage:
    python tools/analysis_tools/benchmark_detector.py [--device cuda]
        [--size 800] [--batch 4] [--iters 30] [--warmup 5]
        [--dtype bf16|fp16|fp32] [--models sm3det joint]

``tools/analysis_tools/gpu_detector_check.sh`` runs it on a GPU machine
without an OpenMMLab install; a dry run here: ``--device cpu --size 128
--iters 2 --warmup 1``.
"""
import argparse
import os.path as osp
import statistics
import time

import torch
from mmdet.structures import DetDataSample
from mmdet.structures.bbox import HorizontalBoxes
from mmengine.config import Config
from mmengine.logging import MMLogger
from mmengine.optim import build_optim_wrapper
from mmengine.registry import init_default_scope
from mmengine.structures import InstanceData
from mmrotate.registry import MODELS
from mmrotate.structures.bbox import RotatedBoxes

import sm3det  # noqa: F401  (registers the modules)
import sm3det_compat

REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIGS = {
    'sm3det': 'configs/sm3det/sm3det_convnext-t_fpn_33k_soi-det.py',
    'joint': 'configs/joint/joint_convnext-t_fpn_33k_soi-det.py',
}
#: dataset tag -> (boxes per image, classes, oriented boxes?)
PARTS = {
    'sar': (6, 6, False),
    'dota': (60, 15, True),
    'dronevehicle': (15, 5, True),
}
MIX = ('sar', 'sar', 'dota', 'dronevehicle')  # SOI-Det's 2:1:1
DTYPES = {'bf16': 'bfloat16', 'fp16': 'float16', 'fp32': None}


def synthetic_sample(part, index, size, generator, with_boxes=True):
    """One image's ``DetDataSample``: boxes 8-25% of the image side, random
    angles for oriented parts."""
    num, num_classes, oriented = PARTS[part]
    meta = dict(
        img_id=f'{part}_{index}',
        dataset_name=part,
        img_shape=(size, size),
        ori_shape=(size, size),
        pad_shape=(size, size),
        scale_factor=(1.0, 1.0))
    sample = DetDataSample(metainfo=meta)
    if not with_boxes:
        return sample
    centre = torch.rand(num, 2, generator=generator) * size * 0.8 + size * .1
    wh = (torch.rand(num, 2, generator=generator) * 0.17 + 0.08) * size
    gt = InstanceData(
        labels=torch.randint(0, num_classes, (num, ), generator=generator))
    if oriented:
        angle = (torch.rand(num, 1, generator=generator) - 0.5) * torch.pi
        gt.bboxes = RotatedBoxes(torch.cat([centre, wh, angle], dim=1))
    else:
        gt.bboxes = HorizontalBoxes(
            torch.cat([centre - wh / 2, centre + wh / 2], dim=1))
    sample.gt_instances = gt
    return sample


def synthetic_batch(size, batch, seed, with_boxes=True):
    generator = torch.Generator().manual_seed(seed)
    parts = [MIX[i % len(MIX)] for i in range(batch)]
    return dict(
        inputs=[
            torch.randint(
                0,
                256, (3, size, size),
                dtype=torch.uint8,
                generator=generator) for _ in parts
        ],
        data_samples=[
            synthetic_sample(part, i, size, generator, with_boxes)
            for i, part in enumerate(parts)
        ])


def synchronize(device):
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


def optim_wrapper_cfg(cfg, device, dtype):
    """The config's optimizer; AMP only where mmengine supports it."""
    wrapper = cfg.optim_wrapper.copy()
    if device.type == 'cuda' and DTYPES[dtype] is not None:
        wrapper.dtype = DTYPES[dtype]
    else:  # mmengine's AmpOptimWrapper needs a GPU
        wrapper.type = 'SkipNonFiniteOptimWrapper'
        for key in ('dtype', 'loss_scale'):
            wrapper.pop(key, None)
    return wrapper


def benchmark(name, args, device):
    cfg = Config.fromfile(osp.join(REPO_ROOT, CONFIGS[name]))
    torch.manual_seed(0)
    model = MODELS.build(cfg.model).to(device)  # random weights: speed only
    model.train()
    optim_wrapper = build_optim_wrapper(
        model, optim_wrapper_cfg(cfg, device, args.dtype))
    batches = [
        synthetic_batch(args.size, args.batch, seed)
        for seed in range(args.warmup + args.iters)
    ]
    if device.type == 'cuda':
        torch.cuda.reset_peak_memory_stats(device)
    times = []
    for i, batch in enumerate(batches):
        synchronize(device)
        start = time.perf_counter()
        losses = model.train_step(batch, optim_wrapper)
        synchronize(device)
        if i >= args.warmup:
            times.append(time.perf_counter() - start)
    loss = sum(float(v) for k, v in losses.items() if 'loss' in k)
    peak = (
        torch.cuda.max_memory_allocated(device) /
        2**30 if device.type == 'cuda' else float('nan'))

    model.eval()
    test_batches = [
        synthetic_batch(args.size, args.batch, seed, with_boxes=False)
        for seed in range(args.test_batches + 1)
    ]
    with torch.no_grad(), torch.autocast(
            device.type,
            dtype=getattr(torch, DTYPES[args.dtype] or 'float32'),
            enabled=device.type == 'cuda' and DTYPES[args.dtype] is not None):
        model.test_step(test_batches[0])  # warm-up
        synchronize(device)
        start = time.perf_counter()
        detections = 0
        for batch in test_batches[1:]:
            results = model.test_step(batch)
            detections += sum(len(r.pred_instances) for r in results)
        synchronize(device)
    test_time = time.perf_counter() - start
    del model, optim_wrapper
    if device.type == 'cuda':
        torch.cuda.empty_cache()
    return dict(
        s_per_iter=statistics.median(times),
        loss=loss,
        peak_gib=peak,
        test_img_per_s=args.test_batches * args.batch / test_time,
        detections=detections)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--device', default='cuda')
    parser.add_argument('--size', type=int, default=800)
    parser.add_argument('--batch', type=int, default=4)
    parser.add_argument('--iters', type=int, default=30)
    parser.add_argument('--warmup', type=int, default=5)
    parser.add_argument('--test-batches', type=int, default=8)
    parser.add_argument('--dtype', choices=list(DTYPES), default='bf16')
    parser.add_argument(
        '--models', nargs='+', choices=list(CONFIGS), default=list(CONFIGS))
    args = parser.parse_args()
    device = torch.device(args.device)
    init_default_scope('mmrotate')
    logger = MMLogger.get_current_instance()
    env = (f'{torch.cuda.get_device_name(device)}' if device.type == 'cuda'
           else 'CPU') + (f', torch {torch.__version__}, mmcv kernels: '
                          f'{sm3det_compat.ops_backend()}')
    logger.info(f'{env}; {args.batch} x {args.size}^2 per batch (2:1:1), '
                f'{args.iters} timed iterations after {args.warmup}, '
                f'{args.dtype}')
    rows = {}
    for name in args.models:
        rows[name] = benchmark(name, args, device)
        logger.info(f'{name}: {rows[name]}')
    lines = [
        '| model | s / iter | peak GPU GiB | test img / s | last loss |',
        '|---|---|---|---|---|',
    ]
    for name, r in rows.items():
        lines.append(f'| {name} | {r["s_per_iter"]:.3f} | '
                     f'{r["peak_gib"]:.1f} | {r["test_img_per_s"]:.1f} | '
                     f'{r["loss"]:.3f} |')
    if len(rows) == 2:
        ratio = rows['sm3det']['s_per_iter'] / rows['joint']['s_per_iter']
        test_ratio = (
            rows['joint']['test_img_per_s'] / rows['sm3det']['test_img_per_s'])
        lines.append(f'\nSM3Det / joint: training {ratio:.2f}x, test '
                     f'{test_ratio:.2f}x (FLOPs: 487G / 403G = 1.21x)')
    logger.info('\n' + '\n'.join(lines))


if __name__ == '__main__':
    main()
