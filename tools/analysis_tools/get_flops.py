"""Parameters and FLOPs of a backbone or detector config.

Parameters count every expert of every MoE layer; FLOPs count one forward
pass, in which each MoE expert only computes the tokens routed to it, so the
total holds the top-k active experts only (sum over experts = k x tokens x
per-token expert FLOPs). FLOPs are mmengine's (fvcore-style) counts from a
jit trace of the actual forward: one multiply-add is one FLOP, as mmcv and
fvcore report them; element-wise ops (GELU, additions, routing) are not
counted.

For the multi-task ``SM3Det`` the FLOPs are those of one forward pass per
dataset head (backbone + neck + that head), summed over the heads: the
paper's convention (e.g. 131G GFL + 136G + 136G Oriented R-CNN = 403G).
Two-stage heads are counted on ``--num-proposals`` RoIs (default 1000, the
fixed proposal count of mmdet 2.x's ``forward_dummy`` that the paper's
numbers use) instead of whatever an untrained RPN happens to propose.

Usage:
    python tools/analysis_tools/get_flops.py CONFIG [--shape 800 800]
        [--backbone-only] [--num-proposals 1000] [--cfg-options KEY=VALUE ...]

A "backbone config" is one whose ``model`` is a backbone, e.g.
``model = dict(type='ConvNeXtMoE', arch='tiny')``.
"""
import argparse
from typing import Dict, Sequence

import torch
import torch.nn as nn
from mmengine.analysis import FlopAnalyzer, parameter_count
from mmengine.config import Config, DictAction
from mmengine.registry import init_default_scope

# isort: off
import sm3det  # noqa: F401  (registers the modules; before mmrotate)
from mmrotate.registry import MODELS
# isort: on


def count_params_and_flops(model: nn.Module, inputs: tuple) -> Dict:
    """Count parameters (all) and FLOPs of ``model(*inputs)`` (executed).

    Args:
        model: Any module; it is run once, under no_grad, in its current
            mode (use eval mode: no gating noise, no drop path).
        inputs: Positional arguments of ``model.forward``.

    Returns:
        dict with ``params`` and ``flops`` (totals) and ``params_by_module``,
        ``flops_by_module`` (name -> count; ``''`` is the whole model).
    """
    analyzer = FlopAnalyzer(model, inputs)
    analyzer.unsupported_ops_warnings(False)
    analyzer.uncalled_modules_warnings(False)
    analyzer.tracer_warnings('none')
    with torch.no_grad():
        flops_by_module = dict(analyzer.by_module())
    params_by_module = dict(parameter_count(model))
    return dict(
        params=params_by_module[''],
        flops=flops_by_module[''],
        params_by_module=params_by_module,
        flops_by_module=flops_by_module)


class DetectorTensorForward(nn.Module):
    """``detector._forward(images, data_samples)`` as a module for tracing:
    the raw network outputs, without post-processing."""

    def __init__(self, detector: nn.Module, data_samples: list):
        super().__init__()
        self.detector = detector
        self.data_samples = data_samples

    def forward(self, images: torch.Tensor):
        return self.detector._forward(images, self.data_samples)


def detector_data_samples(shape: Sequence[int],
                          batch: int = 1,
                          **extra_meta) -> list:
    """Data samples with the metainfo a detector's forward reads (plus
    ``extra_meta``, e.g. ``dataset_name``)."""
    from mmdet.structures import DetDataSample
    meta = dict(
        img_shape=tuple(shape),
        ori_shape=tuple(shape),
        pad_shape=tuple(shape),
        batch_input_shape=tuple(shape),
        scale_factor=(1., 1.),
        **extra_meta)
    return [DetDataSample(metainfo=meta) for _ in range(batch)]


def fix_proposal_count(model_cfg: Config, num_proposals: int) -> None:
    """Make every RPN keep exactly-at-most ``num_proposals`` at test time."""
    detectors = [task.detector for task in model_cfg.get('tasks', {}).values()]
    for detector in detectors or [model_cfg]:
        rpn_test_cfg = detector.get('test_cfg', {}).get('rpn')
        if rpn_test_cfg is not None:
            rpn_test_cfg.max_per_img = num_proposals


def build_for_counting(cfg: Config,
                       shape: Sequence[int],
                       backbone_only: bool = False,
                       task: str = None) -> tuple:
    """Model in eval mode wrapped for tracing, and its inputs.

    ``task``: for a multi-task detector, the dataset whose head runs.
    """
    model_cfg = cfg.model.backbone if backbone_only else cfg.model
    model = MODELS.build(model_cfg).eval()
    return wrap_for_counting(model, shape, task)


def wrap_for_counting(model: nn.Module,
                      shape: Sequence[int],
                      task: str = None) -> tuple:
    """A detector as a traceable module (with ``dataset_name=task`` in its
    samples), and its inputs; other modules as they are."""
    images = torch.rand(1, 3, *shape)
    if hasattr(model, 'extract_feat') and hasattr(model, '_forward'):
        extra = dict(dataset_name=task) if task else {}
        model = DetectorTensorForward(model,
                                      detector_data_samples(shape, **extra))
    return model, (images, )


def count_config(cfg: Config,
                 shape: Sequence[int],
                 backbone_only: bool = False) -> Dict:
    """Parameters and FLOPs of a config's model; for a multi-task detector
    the FLOPs are summed over one forward per task (``flops_by_task``)."""
    tasks = [] if backbone_only else list(cfg.model.get('tasks', {}))
    if not tasks:
        model, inputs = build_for_counting(cfg, shape, backbone_only)
        return dict(count_params_and_flops(model, inputs), model=model)
    detector = MODELS.build(cfg.model).eval()
    by_task = {}
    for task in tasks:
        model, inputs = wrap_for_counting(detector, shape, task)
        by_task[task] = count_params_and_flops(model, inputs)
    result = dict(by_task[tasks[0]], model=model)
    result['flops'] = sum(r['flops'] for r in by_task.values())
    result['flops_by_task'] = {t: r['flops'] for t, r in by_task.items()}
    return result


def format_params(value: float) -> str:
    return f'{value / 1e6:.2f} M'


def format_flops(value: float) -> str:
    return f'{value / 1e9:.2f} G'


def moe_summary(model: nn.Module) -> str:
    from sm3det.models.layers import GridMoE
    layers = [m for m in model.modules() if isinstance(m, GridMoE)]
    if not layers:
        return 'no MoE layer'
    experts = sorted({(m.num_experts, m.top_k, m.routing) for m in layers})
    return f'{len(layers)} MoE layers, (experts, top-k, routing): {experts}'


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config')
    parser.add_argument(
        '--shape',
        type=int,
        nargs='+',
        default=[800, 800],
        help='input height [width]')
    parser.add_argument(
        '--backbone-only',
        action='store_true',
        help='count model.backbone of a detector config')
    parser.add_argument(
        '--num-proposals',
        type=int,
        default=1000,
        help='RoIs per image for two-stage heads')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    args = parser.parse_args()
    shape = args.shape * 2 if len(args.shape) == 1 else args.shape

    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    init_default_scope(cfg.get('default_scope', 'mmrotate'))
    fix_proposal_count(cfg.model, args.num_proposals)
    result = count_config(cfg, shape, args.backbone_only)
    model = result['model']

    print(f'config: {args.config}  input: 1x3x{shape[0]}x{shape[1]}')
    print(moe_summary(model))
    print('FLOPs: one multiply-add = 1 FLOP; active (top-k) experts only. '
          'Params: all experts.')
    is_detector = isinstance(model, DetectorTensorForward)
    network = model.detector if is_detector else model
    prefix = 'detector.' if is_detector else ''
    # Per-module FLOPs belong to one forward; a multi-task model has several.
    per_task = 'flops_by_task' in result
    for name, _ in network.named_children():
        params = result['params_by_module'].get(prefix + name, 0)
        flops = result['flops_by_module'].get(prefix + name, 0)
        print(f'  {name:<24} params {format_params(params):>10}' +
              ('' if per_task else f'  FLOPs {format_flops(flops):>10}'))
    for task, flops in result.get('flops_by_task', {}).items():
        print(f'  forward with the {task} head: FLOPs {format_flops(flops)}')
    print(f'total: params {format_params(result["params"])}  '
          f'FLOPs {format_flops(result["flops"])}')


if __name__ == '__main__':
    main()
