"""Tables of SOI-Det results: per-class tables and the Table-1-style summary.

Metric values are fractions in [0, 1]; tables show them in percent with two
decimals, as the paper does.
"""
from typing import Dict, List, Mapping, Optional, Sequence

import numpy as np
from terminaltables import AsciiTable

SUMMARY_METRICS = ('mAP', 'AP50', 'AP75')


def display_names(tasks: Mapping[str, Mapping]) -> Dict[str, str]:
    """Column names of the tasks of an evaluator config.

    Args:
        tasks: ``SOIDetMetric``'s ``tasks`` (name -> spec); a spec may give
            ``display_name`` (e.g. ``'DroneVehicle'``), else the name is used.

    Returns:
        dict: task name -> its column name, in the config's order.
    """
    return {
        name: spec.get('display_name', name)
        for name, spec in tasks.items()
    }


def _percent(value: Optional[float]) -> str:
    if value is None or not np.isfinite(value):
        return '-'
    return f'{100 * value:.2f}'


def _summary_rows(
        metrics: Mapping[str, float],
        names: Optional[Mapping[str, str]] = None) -> List[List[str]]:
    """Rows ``[metric, overall, <dataset>...]`` from ``<dataset>/<metric>``.

    Keys may carry any prefix (``soi_det/dota/mAP``); other keys are skipped.
    Datasets in ``names`` come first, in its order and with its column names.
    """
    columns: Dict[str, Dict[str, float]] = {}
    for key, value in metrics.items():
        parts = key.split('/')
        if len(parts) >= 2 and parts[-1] in SUMMARY_METRICS:
            columns.setdefault(parts[-2], {})[parts[-1]] = value
    names = dict(overall='overall', **(names or {}))
    order = list(names)
    datasets = sorted(
        columns,
        key=lambda name: (order.index(name)
                          if name in names else len(order), name))
    rows = [[''] + [names.get(name, name) for name in datasets]]
    for metric in SUMMARY_METRICS:
        rows.append([metric] +
                    [_percent(columns[name].get(metric)) for name in datasets])
    return rows


def format_summary_markdown(metrics: Mapping[str, float],
                            names: Optional[Mapping[str, str]] = None) -> str:
    """The summary (overall and each dataset; mAP, AP50, AP75) as Markdown.

    Args:
        metrics: the dict returned by ``SOIDetMetric`` (keys like
            ``soi_det/dota/mAP``, prefixed or not), values in [0, 1].
        names: dataset -> column name (:func:`display_names` of the
            evaluator's tasks); other datasets follow under their own name.

    Returns:
        str: a Markdown table in percent, one column per dataset.
    """
    rows = _summary_rows(metrics, names)
    lines = ['| ' + ' | '.join(row) + ' |' for row in rows]
    lines.insert(1, '|' + '---|' * len(rows[0]))
    return '\n'.join(lines) + '\n'


def format_summary_table(metrics: Mapping[str, float],
                         names: Optional[Mapping[str, str]] = None) -> str:
    """The same summary as :func:`format_summary_markdown`, as ASCII art."""
    return AsciiTable(_summary_rows(metrics, names), title='SOI-Det').table


def format_class_table(title: str, classes: Sequence[str], ap: np.ndarray,
                       num_gts: np.ndarray, num_dets: np.ndarray,
                       named_thrs: Mapping[str, int]) -> str:
    """One dataset's per-class table: gts, dets, mAP and APs at named thrs.

    Args:
        title: the table's title (the dataset name).
        classes: C class names.
        ap: (T, C) AP per IoU threshold and class, NaN for classes without
            ground truth (shown as '-').
        num_gts: (C,) ground-truth boxes per class.
        num_dets: (C,) detections per class.
        named_thrs: column name -> threshold index, e.g. ``{'AP50': 0}``.
    """
    rows = [['class', 'gts', 'dets', 'mAP', *named_thrs]]
    for c, name in enumerate(classes):
        rows.append([
            name,
            str(num_gts[c]),
            str(num_dets[c]),
            _percent(ap[:, c].mean()),
            *(_percent(ap[t, c]) for t in named_thrs.values())
        ])
    return AsciiTable(rows, title=title).table
