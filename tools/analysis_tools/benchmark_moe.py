"""Forward+backward time of the grid-level MoE relative to the dense MLP.

Measures, in one run and interleaved (dense, MoE, dense, MoE, ...) so that
a noisy shared machine affects both alike, the median time of
``forward + backward`` of

1. one GridMoE layer (8 ConvNeXt-MLP experts, top-2, cosine router, noisy
   gating, training mode) against the dense ConvNeXt MLP, at the SOI-Det
   stage-3 shape (4 images x 50 x 50 tokens, C = 384) and a smaller shape;
2. the whole ConvNeXt-T backbone with SM3Det's nine MoE blocks against the
   dense ConvNeXt-T, one 800 x 800 image.

Top-2 routing computes every token twice, so 2.0x is the ideal ratio for the
layer; the rest is routing and dispatch.

Usage:
    python tools/analysis_tools/benchmark_moe.py [--device cuda] [--amp]
        [--repeats 10] [--backbone-repeats 3] [--backbone-batch 1]
        [--skip-backbone] [--threads N]

``--amp`` runs the forward under fp16 autocast, as the recipe's
``AmpOptimWrapper`` does; on CUDA the peak memory of each model is printed too.

On a shared CPU, ``--threads 1`` gives the steadiest ratios: with several
threads every small op waits for all of them, which penalises the MoE's
many per-expert ops far more than the dense MLP's few large ones.
"""
import argparse
import os
import statistics
import time

import torch

import sm3det  # noqa: F401  (before mmrotate)
from sm3det.models.backbones import ConvNeXtMLP, ConvNeXtMoE
from sm3det.models.layers import GridMoE, moe_balance_loss

LAYER_SHAPES = {
    'stage-3 (4 x 50x50, C=384)': (4, 50, 50, 384),
    'small (2 x 25x25, C=192)': (2, 25, 25, 192),
}


def synchronize(device: torch.device) -> None:
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


def time_step(model, inputs, device, aux_loss=None, amp=False) -> float:
    """Seconds of one forward + backward (loss = mean of the outputs)."""
    model.zero_grad(set_to_none=True)
    synchronize(device)
    start = time.perf_counter()
    with torch.autocast(device.type, dtype=torch.float16, enabled=amp):
        outputs = model(inputs)
    outputs = outputs if isinstance(outputs, tuple) else (outputs, )
    loss = sum(out.float().mean() for out in outputs)
    extra = aux_loss() if aux_loss is not None else None
    if extra is not None:
        loss = loss + extra
    loss.backward()
    synchronize(device)
    return time.perf_counter() - start


def peak_memory(model, inputs, device, aux_loss, amp) -> float:
    """Peak CUDA memory (GiB) of one forward + backward."""
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats(device)
    time_step(model, inputs, device, aux_loss, amp)
    return torch.cuda.max_memory_allocated(device) / 2**30


def compare(name, dense, moe, inputs, device, repeats, warmup=1,
            moe_aux_loss=None, amp=False) -> None:
    """Interleaved medians of dense and MoE; prints both and their ratio."""
    models = {'dense': (dense, None), 'moe': (moe, moe_aux_loss)}
    times = {'dense': [], 'moe': []}
    for step in range(warmup + repeats):
        for key, (model, aux) in models.items():
            seconds = time_step(model, inputs, device, aux, amp)
            if step >= warmup:
                times[key].append(seconds)
    dense_median = statistics.median(times['dense'])
    moe_median = statistics.median(times['moe'])
    line = (f'{name:<38} dense {dense_median * 1e3:9.1f} ms   '
            f'MoE {moe_median * 1e3:9.1f} ms   '
            f'ratio {moe_median / dense_median:5.2f}x   '
            f'(median of {repeats})')
    if device.type == 'cuda':
        memory = {key: peak_memory(model, inputs, device, aux, amp)
                  for key, (model, aux) in models.items()}
        line += (f'   peak memory {memory["dense"]:.2f} / '
                 f'{memory["moe"]:.2f} GiB')
    print(line)


def benchmark_layers(device, repeats, amp) -> None:
    for name, (batch, height, width, channels) in LAYER_SHAPES.items():
        torch.manual_seed(0)
        dense = ConvNeXtMLP(channels).to(device).train()
        moe = GridMoE(
            channels,
            expert_cfg=dict(type='ConvNeXtMLP', in_channels=channels),
            num_experts=8,
            top_k=2).to(device).train()
        inputs = torch.randn(
            batch, height, width, channels, device=device,
            requires_grad=True)
        compare(f'layer {name}', dense, moe, inputs, device, repeats,
                moe_aux_loss=lambda: moe.last_balance_loss, amp=amp)


def benchmark_backbones(device, repeats, batch, amp) -> None:
    torch.manual_seed(0)
    dense = ConvNeXtMoE('tiny', moe_blocks=[]).to(device).train()
    moe = ConvNeXtMoE('tiny').to(device).train()
    images = torch.randn(batch, 3, 800, 800, device=device)
    compare(f'backbone ConvNeXt-T ({batch} x 800x800)', dense, moe, images,
            device, repeats, moe_aux_loss=lambda: moe_balance_loss(moe), amp=amp)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--repeats', type=int, default=10,
                        help='timed steps per model for the layers')
    parser.add_argument('--backbone-repeats', type=int, default=3,
                        help='timed steps per model for the backbones')
    parser.add_argument('--backbone-batch', type=int, default=1,
                        help='800 x 800 images per backbone step')
    parser.add_argument('--skip-backbone', action='store_true')
    parser.add_argument('--amp', action='store_true',
                        help='forward under fp16 autocast')
    parser.add_argument('--threads', type=int, help='CPU threads for torch')
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    name = (torch.cuda.get_device_name(device) if device.type == 'cuda'
            else f'{torch.get_num_threads()} CPU threads')
    print(f'device {device} ({name}), torch {torch.__version__}, '
          f'{"fp16 autocast" if args.amp else "fp32"}, load average '
          f'{os.getloadavg()[0]:.1f}')
    benchmark_layers(device, args.repeats, args.amp)
    if not args.skip_backbone:
        benchmark_backbones(device, args.backbone_repeats,
                            args.backbone_batch, args.amp)


if __name__ == '__main__':
    main()
