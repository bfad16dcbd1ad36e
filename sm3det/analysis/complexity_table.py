"""Measured parameters and FLOPs of several configs beside the paper's.

A config matches its published row when its parameters lie within
``PARAMS_TOLERANCE`` and its FLOPs within ``FLOPS_TOLERANCE`` (relative).
When all the "separate models" of one paper group are measured, a row adds
them up, as the paper reports them.
"""
from typing import Dict, List, Optional

from ..paper import PAPER_GROUPS, PAPER_MODELS, PaperModel, group_name

PARAMS_TOLERANCE = 0.01  # relative
FLOPS_TOLERANCE = 0.05
HEADER = [
    'config', 'paper row', 'params (M)', 'FLOPs (G)', 'paper params (M)',
    'paper FLOPs (G)', 'params diff', 'FLOPs diff', 'matches'
]


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
