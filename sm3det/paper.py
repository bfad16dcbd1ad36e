"""The paper's numbers, read from ``configs/metafile.yml`` (their one source).

``PAPER_MODELS`` (config name -> published row) and ``PAPER_GROUPS`` (the
rows that sum other models, e.g. the "3 separate models") are what the
analysis tools compare with and the tests check configs and READMEs against;
:func:`paper_tables` renders the metafile as the Markdown block of
``configs/README.md`` between ``PAPER_TABLES_BEGIN`` and ``PAPER_TABLES_END``.
"""
import glob
import os.path as osp
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple

import yaml

METAFILE = osp.join(
    osp.dirname(osp.dirname(osp.abspath(__file__))), 'configs', 'metafile.yml')
# Datasets of the metafile's Results, in the tables' column order.
PART_DATASETS = ('SARDet-50K', 'DOTA-v1.0', 'DroneVehicle')
PAPER_TABLES_BEGIN = '<!-- paper-tables: model_complexity.py --paper-tables'\
    ' -->'
PAPER_TABLES_END = '<!-- /paper-tables -->'


class PaperModel(NamedTuple):
    """A published row: params in M, FLOPs in G (800x800, summed over the
    dataset heads), overall mAP in percent; None where unpublished."""
    label: str
    params: Optional[float] = None
    flops: Optional[float] = None
    overall_map: Optional[float] = None


def config_name(path: str) -> str:
    """``configs/x/name.py`` -> ``name``: the key of the paper tables."""
    return osp.splitext(osp.basename(path))[0]


def group_name(members: Sequence[str]) -> str:
    """Short table name of a group: ``sum: gfl_convnext-t + ...``."""
    return 'sum: ' + ' + '.join(name.split('_fpn')[0] for name in members)


def _scaled(value: Optional[float], unit: float) -> Optional[float]:
    return None if value is None else value / unit


def _number(value: Optional[float], fmt: str = '.2f') -> str:
    return '-' if value is None else format(value, fmt)


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
    return PaperModel(meta['Paper Row'], _scaled(params, 1e6),
                      _scaled(flops, 1e9), overall[0] if overall else None)


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


PAPER_MODELS, PAPER_GROUPS = load_metafile()


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
