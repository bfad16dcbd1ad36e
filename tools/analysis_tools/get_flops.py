"""Parameters and FLOPs of a backbone or detector config.

Parameters count every expert of every MoE layer; FLOPs count one forward
pass with only the top-k active experts, one multiply-add = 1 FLOP, and for
the multi-task ``SM3Det`` one forward per dataset head summed: the paper's
conventions, counted by :mod:`sm3det.analysis.complexity`. Two-stage heads
are counted on ``--num-proposals`` RoIs (default 1000, the fixed proposal
count of mmdet 2.x's ``forward_dummy`` that the paper's numbers use).

Usage:
    python tools/analysis_tools/get_flops.py CONFIG [--shape 800 800]
        [--backbone-only] [--num-proposals 1000] [--cfg-options KEY=VALUE ...]

A "backbone config" is one whose ``model`` is a backbone, e.g.
``model = dict(type='ConvNeXtMoE', arch='tiny')``.
"""
import argparse

import torch.nn as nn
from mmengine.config import Config, DictAction
from mmengine.registry import init_default_scope

from sm3det.analysis.complexity import (DetectorTensorForward, count_config,
                                        fix_proposal_count)


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
    cfg.model = fix_proposal_count(cfg.model, args.num_proposals)
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
