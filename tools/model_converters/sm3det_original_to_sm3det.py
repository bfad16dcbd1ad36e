"""Convert a checkpoint of the authors' SM3Det code to this repository.

The authors' code (repository zcablii/SM3Det, MMRotate 0.x / mmcv 1.x) names
its backbone, router and heads differently and gives its heads one shared
label space of 26 classes; :mod:`sm3det.converters.sm3det_original` says
what changes. The MoE placement and expert count are read from the
checkpoint's keys and top-k from its stored config text (or ``--top-k``);
they must match the config's model. The output loads strictly into that
model and is saved as the model's own ``state_dict()`` with
``meta.dataset_meta``; the tool prints a table of the converted, dropped
and created keys.

Usage:
    python tools/model_converters/sm3det_original_to_sm3det.py \
        iter_33468.pth CONFIG OUT.pth [--top-k K] [--unsafe-pickle]
"""
import argparse

from mmengine.config import DictAction

from sm3det.converters.sm3det_original import convert


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Convert an original SM3Det (MMRotate 0.x) checkpoint')
    parser.add_argument('src', help='the original checkpoint')
    parser.add_argument(
        'config',
        help='the matching config here, e.g. one '
        'of configs/converted/')
    parser.add_argument('dst', help='the converted checkpoint to write')
    parser.add_argument(
        '--top-k',
        type=int,
        help='top-k of the MoE '
        'layers, when the checkpoint stores no config text')
    parser.add_argument(
        '--unsafe-pickle',
        action='store_true',
        help='unpickle objects other than tensors and plain '
        'data (runs code in the file: trusted files only)')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override config settings, KEY=VALUE')
    return parser.parse_args(argv)


def main(argv=None) -> str:
    args = parse_args(argv)
    table = convert(args.src, args.config, args.dst, args.top_k,
                    args.unsafe_pickle, args.cfg_options)
    print(table)
    print(f'Wrote {args.dst}')
    return table


if __name__ == '__main__':
    main()
