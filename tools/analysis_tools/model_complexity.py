"""Parameters and FLOPs of several configs in one table, beside the paper's.

    python tools/analysis_tools/model_complexity.py CONFIG [CONFIG ...]
        [--shape 800 [800]] [--num-proposals 1000] [--params-only]
        [--markdown]
    python tools/analysis_tools/model_complexity.py --paper-tables

Each config is counted by :mod:`sm3det.analysis.complexity` with
get_flops.py's conventions: all experts in the parameters, only the top-k
active experts in the FLOPs, one multiply-add = 1 FLOP, and for SM3Det one
forward per dataset head summed. Where a config is one of the paper's
(configs/metafile.yml), the table shows the published numbers (read by
:mod:`sm3det.paper`) and the relative difference; a config matches when its
parameters lie within 1% and its FLOPs within 5%
(:mod:`sm3det.analysis.complexity_table`). When all three "separate models"
of one backbone size are listed, a row adds them up, as the paper reports
them. ``--params-only`` skips the FLOPs and builds the models on PyTorch's
meta device: seconds, no memory, even for ConvNeXt-L.

``--paper-tables`` prints the paper's tables from configs/metafile.yml as
Markdown, one per ``Paper Table``: the block of configs/README.md between
its ``paper-tables`` markers (tests/test_metafile.py keeps them equal).
"""
import argparse
import sys

from sm3det.analysis.complexity import measure_config
from sm3det.analysis.complexity_table import complexity_rows, format_rows
from sm3det.paper import config_name, paper_tables


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('configs', nargs='*', metavar='CONFIG')
    parser.add_argument(
        '--shape',
        type=int,
        nargs='+',
        default=[800],
        help='input height [width]')
    parser.add_argument(
        '--num-proposals',
        type=int,
        default=1000,
        help='RoIs per image for two-stage heads')
    parser.add_argument(
        '--params-only',
        action='store_true',
        help='count parameters only (meta device, fast)')
    parser.add_argument(
        '--markdown', action='store_true', help='print a Markdown table')
    parser.add_argument(
        '--paper-tables',
        action='store_true',
        help="print the paper's tables of configs/metafile.yml (Markdown)")
    args = parser.parse_args()
    if args.paper_tables:
        print(paper_tables())
        return
    if not args.configs:
        parser.error('give CONFIG(s) or --paper-tables')
    if len(args.shape) > 2:
        parser.error('--shape takes one or two numbers')
    shape = args.shape * 2 if len(args.shape) == 1 else args.shape

    measured = {}
    for path in args.configs:
        measured[config_name(path)] = counts = measure_config(
            path, shape, args.num_proposals, args.params_only)
        # Progress: counting FLOPs of a ConvNeXt-T config takes a minute.
        flops = counts['flops']
        print(
            f'{path}: {counts["params"] / 1e6:.2f} M params' +
            ('' if flops is None else f', {flops / 1e9:.2f} G FLOPs'),
            file=sys.stderr,
            flush=True)
    if not args.params_only:
        print(f'input 1x3x{shape[0]}x{shape[1]}; FLOPs: one multiply-add = '
              '1, active experts only, summed over the dataset heads; '
              'params: all experts')
    print(format_rows(complexity_rows(measured), args.markdown))


if __name__ == '__main__':
    main()
