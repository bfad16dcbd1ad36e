"""Parameters and FLOPs of several configs in one table, beside the paper's.

    python tools/analysis_tools/model_complexity.py CONFIG [CONFIG ...]
        [--shape 800 [800]] [--num-proposals 1000] [--params-only]
        [--markdown]
    python tools/analysis_tools/model_complexity.py --paper-tables

Each config is counted by ``get_flops.count_config`` with get_flops.py's
conventions: all experts in the parameters, only the top-k active experts in
the FLOPs, one multiply-add = 1 FLOP, and for SM3Det one forward per dataset
head summed. Where a config is one of the paper's (configs/metafile.yml),
the table shows the published numbers and the relative difference; a config
matches when its parameters lie within 1% and its FLOPs within 5%. When all
three "separate models" of one backbone size are listed, a row adds them up,
as the paper reports them. ``--params-only`` skips the FLOPs and builds
the models on PyTorch's meta device: seconds, no memory, even for ConvNeXt-L.

``--paper-tables`` prints the paper's tables from configs/metafile.yml as
Markdown, one per ``Paper Table``: the block of configs/README.md between
its ``paper-tables`` markers (tests/test_metafile.py keeps them equal).
"""
import argparse
import glob
import os.path as osp
import sys
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple

import torch
import yaml
from mmengine.config import Config
from mmengine.registry import init_default_scope

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
# get_flops imports sm3det, whose compatibility fixes must precede mmrotate.
from get_flops import count_config, fix_proposal_count  # noqa: E402
from mmrotate.registry import MODELS  # noqa: E402

PARAMS_TOLERANCE = 0.01  # relative
FLOPS_TOLERANCE = 0.05
# The paper's numbers, one entry per config.
METAFILE = osp.join(
    osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))), 'configs',
    'metafile.yml')


class PaperModel(NamedTuple):
    """A published row: params in M, FLOPs in G (800x800, summed over the
    dataset heads), overall mAP in percent; None where unpublished."""
    label: str
    params: Optional[float] = None
    flops: Optional[float] = None
    overall_map: Optional[float] = None


def _paper_model(entry: dict, source: str) -> PaperModel:
    meta = entry.get('Metadata') or {}
    if 'Paper Row' not in meta:
        raise ValueError(f"{source}: model {entry.get('Name')!r} has no "
                         "'Metadata: Paper Row'")
    overall = [
        result['Metrics'].get('mAP') for result in entry.get('Results') or []
        if result.get('Dataset') == 'SOI-Det'
    ]
    params, flops = meta.get('Parameters'), meta.get('FLOPs')
    return PaperModel(meta['Paper Row'],
                      None if params is None else params / 1e6,
                      None if flops is None else flops / 1e9,
                      overall[0] if overall else None)


def load_metafile(
    path: str = METAFILE
) -> Tuple[Dict[str, PaperModel], Dict[tuple, PaperModel]]:
    """The paper's rows from an OpenMMLab metafile (configs/metafile.yml).

    Returns:
        ``(models, groups)``: config name -> PaperModel for the entries with
        a ``Config``; tuple of member config names -> PaperModel for the
        entries that sum other models (``Members``, e.g. the "3 separate
        models"), as the paper reports them.

    Raises:
        ValueError: an entry without ``Paper Row``, or with both or neither
            of ``Config`` and ``Members``, or a repeated name.
    """
    with open(path) as f:
        entries = yaml.safe_load(f)['Models']
    models, groups = {}, {}
    for entry in entries:
        name = entry.get('Name')
        if ('Config' in entry) == ('Members' in entry):
            raise ValueError(f'{path}: model {name!r} needs exactly one of '
                             '`Config` and `Members`')
        if name in models or tuple(entry.get('Members', ())) in groups:
            raise ValueError(f'{path}: model {name!r} is listed twice')
        paper = _paper_model(entry, path)
        if 'Config' in entry:
            if config_name(entry['Config']) != name:
                raise ValueError(f"{path}: model {name!r} has Config "
                                 f"{entry['Config']}: Name must be its "
                                 'file name without .py')
            models[name] = paper
        else:
            groups[tuple(entry['Members'])] = paper
    return models, groups


def group_name(members: Sequence[str]) -> str:
    """Short table name of a group: ``sum: gfl_convnext-t + ...``."""
    return 'sum: ' + ' + '.join(name.split('_fpn')[0] for name in members)


def config_name(path: str) -> str:
    """``configs/x/name.py`` -> ``name``: the key of the paper tables."""
    return osp.splitext(osp.basename(path))[0]


PAPER_MODELS, PAPER_GROUPS = load_metafile()

# Datasets of the metafile's Results, in the tables' column order.
PART_DATASETS = ('SARDet-50K', 'DOTA-v1.0', 'DroneVehicle')
PAPER_TABLES_BEGIN = '<!-- paper-tables: model_complexity.py --paper-tables'\
    ' -->'
PAPER_TABLES_END = '<!-- /paper-tables -->'


def paper_tables(path: str = METAFILE) -> str:
    """The metafile's rows with numbers as Markdown tables, one per ``Paper
    Table`` (in order of first appearance), between the README markers.

    Columns: paper row, config(s) (relative to configs/), params (M), FLOPs
    (G), overall mAP / AP50 / AP75 and the three parts' mAP ('-' where the
    paper gives none).
    """
    with open(path) as f:
        entries = yaml.safe_load(f)['Models']
    tables: Dict[str, List[str]] = {}
    for entry in entries:
        meta = entry.get('Metadata') or {}
        if not (entry.get('Results') or 'Parameters' in meta
                or 'FLOPs' in meta):
            continue  # a paper row without published numbers
        configs = ([osp.relpath(entry['Config'], 'configs')]
                   if 'Config' in entry else
                   [_config_path(name) for name in entry['Members']])
        metrics = {
            result['Dataset']: result['Metrics']
            for result in entry.get('Results') or []
        }
        overall = metrics.get('SOI-Det', {})
        cells = [
            meta['Paper Row'], ' + '.join(f'`{c}`' for c in configs),
            _number(_scaled(meta.get('Parameters'), 1e6), 'g'),
            _number(_scaled(meta.get('FLOPs'), 1e9), 'g'), ' / '.join(
                _number(overall.get(key)) for key in ('mAP', 'AP50', 'AP75')),
            ' / '.join(
                _number(metrics.get(part, {}).get('mAP'))
                for part in PART_DATASETS)
        ]
        tables.setdefault(meta['Paper Table'],
                          []).append('| ' + ' | '.join(cells) + ' |')
    lines = [PAPER_TABLES_BEGIN]
    for title, rows in tables.items():
        lines += [
            '', f'### {title}', '',
            '| paper row | config | params (M) | FLOPs (G) | overall mAP / '
            'AP50 / AP75 | SAR / DOTA / DroneVehicle mAP |',
            '|---|---|---|---|---|---|', *rows
        ]
    return '\n'.join(lines + ['', PAPER_TABLES_END])


def _config_path(name: str) -> str:
    """A config's path relative to configs/, from its name."""
    configs_dir = osp.dirname(METAFILE)
    found = glob.glob(
        osp.join(configs_dir, '**', name + '.py'), recursive=True)
    if len(found) != 1:
        raise ValueError(f'{METAFILE}: Members name {name!r} matches '
                         f'{len(found)} configs under {configs_dir}')
    return osp.relpath(found[0], configs_dir)


def _scaled(value: Optional[float], unit: float) -> Optional[float]:
    return None if value is None else value / unit


def measure_config(path: str,
                   shape: Sequence[int],
                   num_proposals: int = 1000,
                   params_only: bool = False) -> Dict[str, Optional[float]]:
    """Parameters and FLOPs (plain counts) of one config's model.

    Args:
        path: an MMEngine config file.
        shape: input ``(H, W)``.
        num_proposals: RoIs per image for two-stage heads.
        params_only: count the parameters of a model built on the meta
            device (no weights allocated); ``flops`` is then None.

    Returns:
        dict with ``params`` and ``flops``.
    """
    cfg = Config.fromfile(path)
    init_default_scope(cfg.get('default_scope', 'mmrotate'))
    if params_only:
        with torch.device('meta'):
            model = MODELS.build(cfg.model)
        return dict(
            params=sum(p.numel() for p in model.parameters()), flops=None)
    fix_proposal_count(cfg.model, num_proposals)
    result = count_config(cfg, shape)
    return dict(params=result['params'], flops=result['flops'])


def _sum_or_none(values) -> Optional[float]:
    values = list(values)
    return None if None in values else sum(values)


def _relative(measured: Optional[float],
              published: Optional[float]) -> Optional[float]:
    if measured is None or published is None:
        return None
    return measured / published - 1


def complexity_rows(measured: Dict[str, Dict[str, float]]) -> List[Dict]:
    """Table rows from measured counts, with the paper's where it has them.

    Args:
        measured: config name -> ``dict(params=..., flops=...)`` (counts).

    Returns:
        One dict per config (in the given order), then one per complete
        group of separate models: ``name``, ``label`` (paper row or ''),
        ``params_m``, ``flops_g``, ``paper`` (PaperModel or None),
        ``params_diff``, ``flops_diff`` (relative, None without a paper
        number) and ``matches`` (None without a paper number).
    """
    entries = [(name, PAPER_MODELS.get(name), counts)
               for name, counts in measured.items()]
    for members, paper in PAPER_GROUPS.items():
        if all(name in measured for name in members):
            entries.append((group_name(members), paper, {
                key:
                _sum_or_none(measured[name][key] for name in members)
                for key in ('params', 'flops')
            }))
    rows = []
    for name, paper, counts in entries:
        params_m = counts['params'] / 1e6
        flops_g = None if counts['flops'] is None else counts['flops'] / 1e9
        params_diff = _relative(params_m, paper and paper.params)
        flops_diff = _relative(flops_g, paper and paper.flops)
        checks = [
            abs(d) <= tol for d, tol in ((params_diff, PARAMS_TOLERANCE),
                                         (flops_diff, FLOPS_TOLERANCE))
            if d is not None
        ]
        rows.append(
            dict(
                name=name,
                label=paper.label if paper else '',
                params_m=params_m,
                flops_g=flops_g,
                paper=paper,
                params_diff=params_diff,
                flops_diff=flops_diff,
                matches=all(checks) if checks else None))
    return rows


def _number(value: Optional[float], fmt: str = '.2f') -> str:
    return '-' if value is None else format(value, fmt)


def _percent(value: Optional[float]) -> str:
    return '-' if value is None else f'{100 * value:+.1f}%'


HEADER = [
    'config', 'paper row', 'params (M)', 'FLOPs (G)', 'paper params (M)',
    'paper FLOPs (G)', 'params diff', 'FLOPs diff', 'matches'
]


def format_rows(rows: List[Dict], markdown: bool = False) -> str:
    """The rows of :func:`complexity_rows` as a Markdown or ASCII table."""
    table = [HEADER]
    for row in rows:
        paper = row['paper'] or PaperModel('')
        table.append([
            row['name'], row['label'],
            _number(row['params_m']),
            _number(row['flops_g']),
            _number(paper.params, 'g'),
            _number(paper.flops, 'g'),
            _percent(row['params_diff']),
            _percent(row['flops_diff']), {
                None: '-',
                True: 'yes',
                False: 'NO'
            }[row['matches']]
        ])
    if markdown:
        lines = ['| ' + ' | '.join(cells) + ' |' for cells in table]
        lines.insert(1, '|' + '---|' * len(HEADER))
        return '\n'.join(lines)
    from terminaltables import AsciiTable
    return AsciiTable(table).table


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
