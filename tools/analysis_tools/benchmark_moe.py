"""Forward+backward time, operation count and memory of the grid-level MoE.

Measures, in one run and interleaved (dense, old, new, dense, old, new, ...)
so that a noisy shared machine affects all alike, the median time of
``forward + backward`` (loss = mean of the outputs + the balance loss) of

1. one MoE layer (8 ConvNeXt-MLP experts, top-2, cosine router, noisy
   gating, training mode) against the dense ConvNeXt MLP, at the SOI-Det
   stage-3 shape (4 images x 50 x 50 tokens, C = 384) and the stage-4 shape
   (4 x 25 x 25, C = 768);
2. the whole ConvNeXt-T backbone with SM3Det's nine MoE blocks against the
   dense ConvNeXt-T, at 1 and 4 images of 800 x 800,

for the old layer (one module per expert, a host read of the per-expert
counts and a Python loop over the experts: the reference implementation kept
in ``tests/test_models/test_grid_moe.py``), the new layer (stacked experts;
``--backends`` chooses which expert backends of it: ``auto``,
``grouped_mm``, ``loop``; ``--compile-gate`` adds it with its routing
arithmetic compiled, ``--compile`` the whole layer compiled) and the dense
MLP. Top-2 routing computes every token twice, so 2.0x dense is the ideal
for the layer.

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
        [--skip-backbone] [--skip-old] [--compile [BACKEND]] [--compile-gate]
        [--threads N] [--glibc-default]

``fp16`` / ``bf16`` run the forward under autocast (as ``AmpOptimWrapper``
does, with ``dtype='float16'`` or ``'bfloat16'``); on CPU only fp32 and bf16
exist. On a shared CPU, ``--threads 1`` gives the steadiest ratios. On CPU
glibc keeps large freed blocks for reuse, as ``tools/train.py`` sets it
(:func:`sm3det.utils.reuse_large_cpu_blocks`); ``--glibc-default`` times
glibc's default, which maps them afresh every step.
"""
import argparse
import importlib.util
import os
import os.path as osp
import statistics
import time
import warnings
from collections import OrderedDict
from typing import Callable, Dict, Optional

import torch
import torch.nn as nn
from torch.profiler import ProfilerActivity, profile

import sm3det  # noqa: F401  (before mmrotate)
from sm3det.models.backbones.convnext_moe import ConvNeXtMLP, ConvNeXtMoE
from sm3det.models.layers import GridMoE, moe_balance_loss, moe_layers
from sm3det.utils.cpu_memory import reuse_large_cpu_blocks

REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
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


def load_old_layer_class():
    """The pre-stacking GridMoE, kept as the tests' reference."""
    path = osp.join(REPO_ROOT, 'tests', 'test_models', 'test_grid_moe.py')
    spec = importlib.util.spec_from_file_location('grid_moe_reference', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.OldGridMoE


def old_copy(layer: GridMoE, old_class) -> nn.Module:
    """An old-layout layer with the weights of ``layer``."""
    old = old_class(
        in_channels=layer.router.proj.in_features,
        expert_cfg=dict(
            type='ConvNeXtMLP', in_channels=layer.experts.fc1.in_features),
        num_experts=layer.num_experts,
        top_k=layer.top_k,
        routing=layer.routing)
    state = {}
    for key, value in layer.state_dict().items():
        if key.startswith('experts.'):
            for e in range(layer.num_experts):
                state[f'experts.{e}.{key[len("experts."):]}'] = value[e]
        else:
            state[key] = value
    old.load_state_dict(state, strict=True)
    return old.to(layer.router.proj.weight.device)


def with_old_layers(backbone: nn.Module, old_class) -> nn.Module:
    """The backbone with every GridMoE replaced by an old-layout copy."""
    for name, layer in list(moe_layers(backbone).items()):
        parent, _, attr = name.rpartition('.')
        setattr(
            backbone.get_submodule(parent), attr,
            old_copy(layer, old_class).train(layer.training))
    return backbone


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
            print(f'    {name:<18} cannot run here: '
                  f'{str(error).splitlines()[0][:160]}')
            del models[name]
    times = {name: [] for name in models}
    for _ in range(repeats):
        for name, model in models.items():
            times[name].append(time_step(model, inputs, amp))
    medians = {name: statistics.median(t) for name, t in times.items()}
    dense = medians[next(iter(models))]
    for name, model in models.items():
        line = (f'    {name:<18} {medians[name] * 1e3:9.1f} ms  '
                f'{medians[name] / dense:5.2f}x dense')
        if ops:
            line += '   ' + count_ops(model, inputs, amp)
        if inputs.device.type == 'cuda':
            line += '   ' + cuda_extras(model, inputs, amp)
        print(line, flush=True)


def moe_variants(build: Callable[..., nn.Module],
                 backends,
                 old_class,
                 compile_backend: Optional[str] = None,
                 compile_gate: bool = False) -> Dict[str, nn.Module]:
    """new layer/backbone per backend (same weights), optionally the first
    of them with ``compile_gate`` and under torch.compile, and the old one.
    ``build(backend, compile_gate=False)`` makes one."""
    models = OrderedDict()
    for backend in backends:
        torch.manual_seed(0)
        models[f'new ({backend})'] = build(backend)
    if compile_gate:
        torch.manual_seed(0)
        models['new (compiled gate)'] = build(backends[0], compile_gate=True)
    if compile_backend:
        torch.manual_seed(0)
        models['new (compiled)'] = torch.compile(
            build(backends[0]), backend=compile_backend)
    if old_class is not None:
        first = next(iter(models.values()))
        old = build('loop')
        old.load_state_dict(first.state_dict())
        models['old'] = (old_copy(old, old_class) if isinstance(old, GridMoE)
                         else with_old_layers(old, old_class)).train()
    return models


def benchmark_layers(device,
                     repeats,
                     amp,
                     backends,
                     old_class,
                     compile_backend=None,
                     compile_gate=False) -> None:
    for name, (batch, height, width, channels) in LAYER_SHAPES.items():
        torch.manual_seed(0)
        models = OrderedDict(dense=ConvNeXtMLP(channels).to(device).train())
        models.update(
            moe_variants(
                lambda backend, compile_gate=False: GridMoE(
                    channels,
                    expert_cfg=dict(type='ConvNeXtMLP', in_channels=channels),
                    num_experts=8,
                    top_k=2,
                    expert_backend=backend,
                    compile_gate=compile_gate).to(device).train(),
                backends,
                old_class,
                compile_backend,
                compile_gate))
        inputs = torch.randn(
            batch, height, width, channels, device=device, requires_grad=True)
        compare(f'layer {name}', models, inputs, repeats, amp, ops=True)


def benchmark_backbones(device,
                        repeats,
                        batches,
                        amp,
                        backends,
                        old_class,
                        compile_gate=False) -> None:

    def build(backend, compile_gate=False):
        return ConvNeXtMoE(
            'tiny',
            moe_cfg=dict(
                num_experts=8,
                top_k=2,
                expert_backend=backend,
                compile_gate=compile_gate)).to(device).train()

    torch.manual_seed(0)
    models = OrderedDict(
        dense=ConvNeXtMoE('tiny', moe_blocks=[]).to(device).train())
    models.update(
        moe_variants(build, backends, old_class, compile_gate=compile_gate))
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
        help='expert backends of the new layer to time')
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
        '--skip-old',
        action='store_true',
        help='leave the old (per-expert loop) layer out')
    parser.add_argument(
        '--compile',
        nargs='?',
        const='inductor',
        metavar='BACKEND',
        help='also time the new layer under torch.compile '
        '(default backend inductor; on CPU its grouped_mm '
        'compiles in bf16 only)')
    parser.add_argument(
        '--compile-gate',
        action='store_true',
        help='also time the new layer with compile_gate=True (its routing '
        'arithmetic under torch.compile)')
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
    old_class = None if args.skip_old else load_old_layer_class()
    for precision in args.precisions:
        print(
            f'device {device} ({name}), torch {torch.__version__}, '
            f'{precision}, load average {os.getloadavg()[0]:.1f}',
            flush=True)
        amp = AMP_DTYPES[precision]
        benchmark_layers(device, args.repeats, amp, args.backends, old_class,
                         args.compile, args.compile_gate)
        if not args.skip_backbone:
            benchmark_backbones(device, args.backbone_repeats,
                                args.backbone_batches, amp, args.backends,
                                old_class, args.compile_gate)


if __name__ == '__main__':
    main()
