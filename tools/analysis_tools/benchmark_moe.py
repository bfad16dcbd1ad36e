"""Forward+backward time, operation count and memory of the grid-level MoE.

Measures, in one run and interleaved (dense, MoE, MoE, dense, MoE, MoE, ...)
so that a noisy shared machine affects all alike, the median time of
``forward + backward`` (loss = mean of the outputs + the balance loss) of

1. one GridMoE layer (8 ConvNeXt-MLP experts, top-2, cosine router, noisy
   gating, training mode) against the dense ConvNeXt MLP, at the SOI-Det
   stage-3 shape (4 images x 50 x 50 tokens, C = 384) and the stage-4 shape
   (4 x 25 x 25, C = 768);
2. the whole ConvNeXt-T backbone with SM3Det's nine MoE blocks against the
   dense ConvNeXt-T, at 1 and 4 images of 800 x 800,

for each expert backend of the layer that ``--backends`` names: ``auto``
(the layer's own choice), ``grouped_mm`` (one grouped GEMM per linear
layer) and ``loop`` (one expert at a time), forced with
:func:`~sm3det.models.layers.expert_dispatch.forced_expert_backend`;
``--compile`` adds the first of them under ``torch.compile``. Top-2 routing
computes every token twice, so 2.0x dense is the ideal for the layer.

Also, per layer shape and model, the number of aten operations of one
forward + backward (torch.profiler: operator calls made by Python and by
autograd, not those inside other operators; in brackets those that are not
views or other metadata-only operators, each at least one kernel launch on a
GPU), and on CUDA the peak memory and the number of host synchronisations
(``torch.cuda.set_sync_debug_mode``).

Usage:
    python tools/analysis_tools/benchmark_moe.py [--device cuda]
        [--precisions fp32 fp16 bf16] [--backends auto loop]
        [--repeats 10] [--backbone-repeats 3] [--backbone-batches 1 4]
        [--skip-backbone] [--compile [BACKEND]] [--threads N]
        [--glibc-default]

``fp16`` / ``bf16`` run the forward under autocast (as ``AmpOptimWrapper``
does, with ``dtype='float16'`` or ``'bfloat16'``); on CPU only fp32 and bf16
exist. On a shared CPU, ``--threads 1`` gives the steadiest ratios. On CPU
glibc keeps large freed blocks for reuse, as ``tools/train.py`` sets it
(:func:`sm3det.utils.reuse_large_cpu_blocks`); ``--glibc-default`` times
glibc's default, which maps them afresh every step.
"""
import argparse
import os
import statistics
import time
import warnings
from collections import OrderedDict
from typing import Callable, Dict, Optional, Sequence

import torch
import torch.nn as nn
from torch.profiler import ProfilerActivity, profile

import sm3det  # noqa: F401  (before mmrotate)
from sm3det.models.backbones.convnext_moe import ConvNeXtMLP, ConvNeXtMoE
from sm3det.models.layers import GridMoE, moe_balance_loss
from sm3det.models.layers.expert_dispatch import forced_expert_backend
from sm3det.utils.cpu_memory import reuse_large_cpu_blocks

LAYER_SHAPES = OrderedDict([
    ('stage-3 (4 x 50x50, C=384)', (4, 50, 50, 384)),
    ('stage-4 (4 x 25x25, C=768)', (4, 25, 25, 768)),
])
AMP_DTYPES = {'fp32': None, 'fp16': torch.float16, 'bf16': torch.bfloat16}
# Operators that only make views or metadata: no kernel on any device.
METADATA_OPS = {
    'aten::' + name
    for name in ('view', '_unsafe_view', 'reshape', '_reshape_alias',
                 'as_strided', 'alias', 'detach', 'detach_', 'lift_fresh',
                 'expand', 'expand_as', 't', 'transpose', 'permute',
                 'unsqueeze', 'squeeze', 'select', 'slice', 'split',
                 'split_with_sizes', 'narrow', 'unbind', 'unflatten',
                 'flatten', 'view_as', 'resolve_conj', 'resolve_neg', 'empty',
                 'empty_like', 'empty_strided', 'result_type', 'is_nonzero',
                 'size', 'stride', 'numel', 'dim', 'contiguous', 'chunk', 'to',
                 'type_as')
}


class ForcedExpertBackend(nn.Module):
    """``model`` with every GridMoE's expert backend forced in its forward
    (``'grouped_mm'`` or ``'loop'``)."""

    def __init__(self, model: nn.Module, backend: str):
        super().__init__()
        self.model = model
        self.backend = backend

    def forward(self, inputs: torch.Tensor):
        with forced_expert_backend(self.backend):
            return self.model(inputs)


def synchronize(device: torch.device) -> None:
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


def step(model: nn.Module, inputs: torch.Tensor,
         amp: Optional[torch.dtype]) -> None:
    """One forward + backward, loss = mean of the outputs + balance loss."""
    model.zero_grad(set_to_none=True)
    with torch.autocast(
            inputs.device.type,
            dtype=amp or torch.float32,
            enabled=amp is not None):
        outputs = model(inputs)
    outputs = outputs if isinstance(outputs, tuple) else (outputs, )
    loss = sum(out.float().mean() for out in outputs)
    balance = moe_balance_loss(model)
    if balance is not None:
        loss = loss + balance
    loss.backward()


def time_step(model, inputs, amp) -> float:
    synchronize(inputs.device)
    start = time.perf_counter()
    step(model, inputs, amp)
    synchronize(inputs.device)
    return time.perf_counter() - start


def count_ops(model, inputs, amp) -> str:
    """aten operators of one forward + backward called from Python or
    autograd (not from inside another operator): all of them, those that
    are not views or other metadata-only operators, and on CUDA the kernel
    launches (compiled kernels included)."""
    step(model, inputs, amp)  # warm-up outside the profile
    activities = [ProfilerActivity.CPU]
    if inputs.device.type == 'cuda':
        activities.append(ProfilerActivity.CUDA)
    with profile(activities=activities) as prof:
        step(model, inputs, amp)
        synchronize(inputs.device)
    events = prof.events()
    names = [
        event.name for event in events if event.name.startswith('aten::')
        and not (event.cpu_parent is not None
                 and event.cpu_parent.name.startswith('aten::'))
    ]
    text = (f'{len(names):4d} aten ops '
            f'({sum(name not in METADATA_OPS for name in names)} non-view)')
    if inputs.device.type == 'cuda':
        launches = sum(
            event.name in ('cudaLaunchKernel', 'cuLaunchKernel',
                           'cudaLaunchKernelExC') for event in events)
        text += f', {launches} kernel launches'
    return text


def cuda_extras(model, inputs, amp) -> str:
    """Peak memory (GiB) and host synchronisations of one step (CUDA)."""
    device = inputs.device
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats(device)
    step(model, inputs, amp)
    synchronize(device)
    peak = torch.cuda.max_memory_allocated(device) / 2**30
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        torch.cuda.set_sync_debug_mode('warn')
        try:
            step(model, inputs, amp)
        finally:
            torch.cuda.set_sync_debug_mode('default')
    syncs = sum('synchroniz' in str(w.message) for w in caught)
    return f'{peak:.2f} GiB, {syncs} syncs'


def compare(title: str, models: Dict[str, nn.Module], inputs: torch.Tensor,
            repeats: int, amp: Optional[torch.dtype], ops: bool) -> None:
    """Interleaved medians of every model; prints each and its ratio to
    the dense one (the first). A model that fails its warm-up step (e.g. an
    expert backend this device or dtype lacks) is reported and left out."""
    print(f'{title}  (median of {repeats})')
    for name, model in list(models.items()):
        try:
            step(model, inputs, amp)  # warm-up
        except (RuntimeError, NotImplementedError, ValueError) as error:
            print(f'    {name:<22} cannot run here: '
                  f'{str(error).splitlines()[0][:160]}')
            del models[name]
    times = {name: [] for name in models}
    for _ in range(repeats):
        for name, model in models.items():
            times[name].append(time_step(model, inputs, amp))
    medians = {name: statistics.median(t) for name, t in times.items()}
    dense = medians[next(iter(models))]
    for name, model in models.items():
        line = (f'    {name:<22} {medians[name] * 1e3:9.1f} ms  '
                f'{medians[name] / dense:5.2f}x dense')
        if ops:
            line += '   ' + count_ops(model, inputs, amp)
        if inputs.device.type == 'cuda':
            line += '   ' + cuda_extras(model, inputs, amp)
        print(line, flush=True)


def moe_variants(
        build: Callable[[], nn.Module],
        backends: Sequence[str],
        compile_backend: Optional[str] = None) -> Dict[str, nn.Module]:
    """The MoE layer / backbone ``build()`` per expert backend (same
    weights: same seed), and optionally the first under torch.compile."""

    def with_backend(backend):
        torch.manual_seed(0)
        model = build()
        return model if backend == 'auto' else ForcedExpertBackend(
            model, backend)

    models = OrderedDict((f'GridMoE ({backend})', with_backend(backend))
                         for backend in backends)
    if compile_backend:
        models['GridMoE (compiled)'] = torch.compile(
            with_backend(backends[0]), backend=compile_backend)
    return models


def benchmark_layers(device,
                     repeats,
                     amp,
                     backends,
                     compile_backend=None) -> None:
    for name, (batch, height, width, channels) in LAYER_SHAPES.items():
        torch.manual_seed(0)
        models = OrderedDict(dense=ConvNeXtMLP(channels).to(device).train())
        models.update(
            moe_variants(
                lambda: GridMoE(
                    channels,
                    expert_cfg=dict(type='ConvNeXtMLP', in_channels=channels),
                    num_experts=8,
                    top_k=2).to(device).train(), backends, compile_backend))
        inputs = torch.randn(
            batch, height, width, channels, device=device, requires_grad=True)
        compare(f'layer {name}', models, inputs, repeats, amp, ops=True)


def benchmark_backbones(device, repeats, batches, amp, backends) -> None:
    torch.manual_seed(0)
    models = OrderedDict(
        dense=ConvNeXtMoE('tiny', moe_blocks=[]).to(device).train())
    models.update(
        moe_variants(
            lambda: ConvNeXtMoE('tiny', moe_cfg=dict(num_experts=8, top_k=2)).
            to(device).train(), backends))
    for batch in batches:
        images = torch.randn(batch, 3, 800, 800, device=device)
        compare(
            f'backbone ConvNeXt-T ({batch} x 800x800)',
            models,
            images,
            repeats,
            amp,
            ops=False)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--device', default='cpu')
    parser.add_argument(
        '--precisions',
        nargs='+',
        default=['fp32'],
        choices=sorted(AMP_DTYPES))
    parser.add_argument(
        '--backends',
        nargs='+',
        default=['auto'],
        choices=['auto', 'grouped_mm', 'loop'],
        help='expert backends of the MoE layer to time (auto: its own '
        'choice)')
    parser.add_argument(
        '--repeats',
        type=int,
        default=10,
        help='timed steps per model for the layers')
    parser.add_argument(
        '--backbone-repeats',
        type=int,
        default=3,
        help='timed steps per model for the backbones')
    parser.add_argument(
        '--backbone-batches',
        type=int,
        nargs='+',
        default=[1, 4],
        help='800 x 800 images per step')
    parser.add_argument('--skip-backbone', action='store_true')
    parser.add_argument(
        '--compile',
        nargs='?',
        const='inductor',
        metavar='BACKEND',
        help='also time the MoE layer under torch.compile '
        '(default backend inductor; on CPU its grouped_mm '
        'compiles in bf16 only)')
    parser.add_argument('--threads', type=int, help='CPU threads for torch')
    parser.add_argument(
        '--glibc-default',
        action='store_true',
        help='on CPU, leave glibc returning large freed blocks to the kernel '
        '(by default they are kept for reuse, as tools/train.py does)')
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    name = (
        torch.cuda.get_device_name(device)
        if device.type == 'cuda' else f'{torch.get_num_threads()} CPU threads')
    if device.type == 'cpu':
        reused = not args.glibc_default and reuse_large_cpu_blocks()
        name += (', glibc reuses large blocks'
                 if reused else ', glibc maps large blocks afresh')
    for precision in args.precisions:
        print(
            f'device {device} ({name}), torch {torch.__version__}, '
            f'{precision}, load average {os.getloadavg()[0]:.1f}',
            flush=True)
        amp = AMP_DTYPES[precision]
        benchmark_layers(device, args.repeats, amp, args.backends,
                         args.compile)
        if not args.skip_backbone:
            benchmark_backbones(device, args.backbone_repeats,
                                args.backbone_batches, amp, args.backends)


if __name__ == '__main__':
    main()
