"""Speed of the PyTorch kernels (``sm3det_compat.ops``) against mmcv's
compiled ones, through mmcv's own wrappers, at the sizes SM3Det's training
and testing use.

Both kernel sets run in this one process, interleaved (compiled, PyTorch,
compiled, ...) so that a noisy machine affects both alike; the compiled
``_ext`` is loaded from the wheel that ``tools/install.sh --compiled-ops``
caches. Prints, per case, the median milliseconds of each and their ratio
(PyTorch / compiled), and the largest difference of their outputs.

Usage:
    python tools/analysis_tools/benchmark_kernels.py [--device cpu]
        [--repeats 5] [--threads N]
"""
import argparse
import statistics
import tempfile
import time
from typing import Callable, Dict

import torch
from mmcv.ops import (DeformConv2d, RoIAlign, RoIAlignRotated, batched_nms,
                      box_iou_rotated, nms_rotated)
from mmengine.logging import MMLogger

from sm3det_compat.compiled_mmcv import (kernels_in_use, load_compiled_ext,
                                         pytorch_ext)


def random_rboxes(n, size, generator, device):
    """(n, 5) boxes (cx, cy, w, h, angle in radians) in a size^2 image."""
    xy = torch.rand(n, 2, generator=generator) * size
    wh = torch.rand(n, 2, generator=generator) * size * 0.1 + 4
    angle = (torch.rand(n, 1, generator=generator) - 0.5) * torch.pi
    return torch.cat([xy, wh, angle], 1).to(device)


def cases(device) -> Dict[str, Callable[[], torch.Tensor]]:
    """Each case: a function running one call (forward, or forward +
    backward) and returning a tensor to compare."""
    g = torch.Generator().manual_seed(0)
    out = {}

    # RPN / GFL test: ~10k boxes over levels, class-aware NMS at 0.7
    xy = torch.rand(10000, 2, generator=g) * 800
    wh = torch.rand(10000, 2, generator=g) * 80 + 4
    hboxes = torch.cat([xy, xy + wh], 1).to(device)
    hscores = torch.rand(10000, generator=g).to(device)
    hidx = torch.randint(0, 5, (10000, ), generator=g).to(device)
    out['batched_nms, 10000 boxes, 5 levels, IoU 0.7'] = lambda: batched_nms(
        hboxes, hscores, hidx, dict(type='nms', iou_threshold=0.7))[1]

    # Oriented R-CNN test: rotated NMS over the RoI head's boxes
    rboxes = random_rboxes(3000, 800, g, device)
    rscores = torch.rand(3000, generator=g).to(device)
    out['nms_rotated, 3000 boxes, IoU 0.1'] = lambda: nms_rotated(
        rboxes, rscores, 0.1)[1]

    # assigner (2000 proposals x 60 gt) and evaluation (1000 x 1000)
    gts = random_rboxes(60, 800, g, device)
    out['box_iou_rotated, 2000 x 60'] = lambda: box_iou_rotated(
        rboxes[:2000], gts)
    out['box_iou_rotated, 1000 x 1000'] = lambda: box_iou_rotated(
        rboxes[:1000], rboxes[1000:2000])

    # RoI heads: 512 sampled RoIs per image, 2 images, 256 channels, P2
    feats = torch.randn(2, 256, 100, 100, generator=g).to(device)
    rrois = torch.cat([
        torch.randint(0, 2, (1024, 1), generator=g).float().to(device),
        random_rboxes(1024, 400, g, device)
    ], 1)
    hrois = torch.cat([rrois[:, :3], rrois[:, 1:3] + rrois[:, 3:5]], 1)

    def fwd_bwd(layer, rois):

        def run():
            x = feats.clone().requires_grad_()
            y = layer(x, rois)
            y.sum().backward()
            return torch.cat([y.flatten(), x.grad.flatten()])

        return run

    out['RoIAlign 7x7 sr0, 1024 RoIs, fwd+bwd'] = fwd_bwd(
        RoIAlign(7, 0.25, 0, aligned=True), hrois)
    out['RoIAlignRotated 7x7 sr2, 1024 RoIs, fwd+bwd'] = fwd_bwd(
        RoIAlignRotated(7, 0.25, 2, clockwise=True), rrois)

    # test time: forward only, 500 RoIs on one image's 64-channel map
    small = torch.randn(1, 64, 64, 64, generator=g).to(device)
    test_rois = torch.cat([
        torch.zeros(500, 1, device=device),
        random_rboxes(500, 256, g, device)
    ], 1)
    test_layer = RoIAlignRotated(7, 0.25, 2, clockwise=True)
    out['RoIAlignRotated 7x7 sr2, 500 RoIs x 64 ch, forward'] = (
        lambda: test_layer(small, test_rois))

    # S2A-Net's AlignConv at P3 of an 800^2 image, batch 2
    conv = DeformConv2d(256, 256, 3, padding=1).to(device)
    x3 = torch.randn(2, 256, 100, 100, generator=g).to(device)
    off = (torch.randn(2, 18, 100, 100, generator=g) * 2).to(device)

    def deform():
        x = x3.clone().requires_grad_()
        o = off.clone().requires_grad_()
        conv.zero_grad()
        y = conv(x, o)
        y.sum().backward()
        return torch.cat([y.flatten(), x.grad.flatten(), o.grad.flatten()])

    out['DeformConv2d 256->256 3x3, 2 x 100x100, fwd+bwd'] = deform
    return out


def timed(fn, device):
    if device.type == 'cuda':
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    result = fn()
    if device.type == 'cuda':
        torch.cuda.synchronize(device)
    return time.perf_counter() - start, result


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--repeats', type=int, default=5)
    parser.add_argument('--threads', type=int, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    logger = MMLogger.get_current_instance()
    with tempfile.TemporaryDirectory() as tmp:
        compiled = load_compiled_ext(tmp)
    if compiled is None:
        raise SystemExit('no compiled mmcv wheel is cached: run bash '
                         'tools/install.sh --compiled-ops first')
    backends = {'compiled': compiled, 'pytorch': pytorch_ext()}
    lines = [
        f'{torch.get_num_threads()} threads, {device}, medians of '
        f'{args.repeats}', '',
        '| case | compiled ms | PyTorch ms | PyTorch / compiled | '
        'max abs diff |', '|---|---|---|---|---|'
    ]
    for name, fn in cases(device).items():
        times = {b: [] for b in backends}
        results = {}
        for _ in range(args.repeats + 1):  # the first round warms up
            for backend, ext in backends.items():
                with kernels_in_use(ext):
                    seconds, results[backend] = timed(fn, device)
                times[backend].append(seconds)
        ms = {b: 1000 * statistics.median(t[1:]) for b, t in times.items()}
        a, b = results['compiled'], results['pytorch']
        diff = ((a.float() - b.float()).abs().max().item()
                if a.shape == b.shape else f'shapes {a.shape} vs {b.shape}')
        lines.append(f'| {name} | {ms["compiled"]:.1f} | '
                     f'{ms["pytorch"]:.1f} | '
                     f'{ms["pytorch"] / ms["compiled"]:.2f}x | {diff} |')
        logger.info(lines[-1])
    logger.info('\n' + '\n'.join(lines))


if __name__ == '__main__':
    main()
