"""One results table, like the paper's Table 1, from test work dirs.

A work dir is a ``--work-dir`` of tools/test.py: it holds
``test_metrics.json`` (SOIDetMetric's keys such as ``soi_det/overall/mAP``,
fractions) and the config the runner dumped there (``<config name>.py``);
without a dumped config the directory's name is the config name (test.py's
default work dir is ``work_dirs/<config name>``).

The datasets (columns, display names, class counts) are the tasks of a test
evaluator (``SOIDetMetric``'s ``tasks``), by default SOI-Det's
(configs/_base_/datasets/soi_det.py) and those of every dumped config.

One row per work dir: the method (the paper's name for the config where it is
one of the paper's, otherwise the config name), overall mAP / AP50 / AP75,
each dataset's mAP in percent, and the paper's overall mAP; '-' where a
number is missing. When the three separate models of one backbone size are
all given, one more row combines them as the paper does: each dataset's
numbers come from its own model, the overall ones are pooled over the classes
of the datasets (the class-count-weighted mean of the dataset numbers, which
is the pooled mean when every class has ground truth).
"""
import csv
import glob
import json
import os.path as osp
from typing import Dict, List, Optional

from mmengine.config import Config

from ..paper import PAPER_GROUPS, PAPER_MODELS, config_name, group_name

SOI_DET_TASKS_CONFIG = osp.join(
    osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))), 'configs',
    '_base_', 'datasets', 'soi_det.py')
# (column, dataset, metric) of the overall columns; one per dataset follows.
OVERALL_COLUMNS = (
    ('overall mAP', 'overall', 'mAP'),
    ('overall AP50', 'overall', 'AP50'),
    ('overall AP75', 'overall', 'AP75'),
)


def evaluator_tasks(config_file: str) -> Dict[str, Dict]:
    """``SOIDetMetric``'s ``tasks`` of a config's test evaluator (name ->
    spec with ``classes`` and optionally ``display_name``); {} without."""
    cfg = Config.fromfile(config_file, import_custom_modules=False)
    evaluator = cfg.get('test_evaluator', cfg.get('val_evaluator'))
    evaluators = evaluator if isinstance(evaluator, list) else [evaluator]
    tasks = {}
    for evaluator in evaluators:
        if isinstance(evaluator, dict):
            tasks.update(evaluator.get('tasks', {}))
    return tasks


def result_columns(tasks: Dict[str, Dict]) -> List[tuple]:
    """(column, dataset, metric) of the overall and per-dataset columns."""
    return list(OVERALL_COLUMNS) + [
        (f"{spec.get('display_name', name)} mAP", name, 'mAP')
        for name, spec in tasks.items()
    ]


def load_work_dir(work_dir: str) -> Dict:
    """The config name, dumped config (or None) and test metrics of a run.

    Raises:
        FileNotFoundError: without ``test_metrics.json``.
        ValueError: when several configs lie in the work dir.
    """
    metrics_file = osp.join(work_dir, 'test_metrics.json')
    if not osp.isfile(metrics_file):
        raise FileNotFoundError(
            f'{metrics_file} not found: run tools/test.py with --work-dir '
            f'{work_dir} first')
    with open(metrics_file) as f:
        metrics = json.load(f)
    configs = sorted(glob.glob(osp.join(work_dir, '*.py')))
    if len(configs) > 1:
        raise ValueError(f'{work_dir} holds several configs {configs}; '
                         'give one work dir per tested config')
    config = configs[0] if configs else None
    name = config_name(config) if config else osp.basename(
        osp.normpath(work_dir))
    return dict(name=name, config=config, metrics=metrics)


def dataset_metrics(metrics: Dict[str, float]) -> Dict[tuple, float]:
    """``{(dataset, metric): value}`` from keys ``[prefix/]dataset/metric``."""
    found = {}
    for key, value in metrics.items():
        parts = key.split('/')
        if len(parts) >= 2 and isinstance(value, (int, float)):
            found[parts[-2], parts[-1]] = float(value)
    return found


def pooled_group(members: List[Dict], tasks: Dict[str,
                                                  Dict]) -> Dict[tuple, float]:
    """The metrics of several single-dataset runs as one multi-task run:
    dataset numbers taken over, overall ones weighted by the class counts
    of ``tasks`` (name -> spec with ``classes``)."""
    combined = {}
    for member in members:
        combined.update({
            key: value
            for key, value in dataset_metrics(member['metrics']).items()
            if key[0] != 'overall'
        })
    datasets = sorted({dataset for dataset, _ in combined})
    unknown = [d for d in datasets if d not in tasks]
    if unknown:
        raise ValueError(
            f'datasets {unknown} of {[m["name"] for m in members]} are not '
            f'among the evaluator tasks {list(tasks)}: their class counts '
            'weigh the pooled overall row; give --tasks-config')
    for metric in {metric for _, metric in combined}:
        if all((d, metric) in combined for d in datasets):
            weights = [len(tasks[d]['classes']) for d in datasets]
            combined['overall', metric] = sum(
                w * combined[d, metric]
                for w, d in zip(weights, datasets)) / sum(weights)
    return combined


def _percent(value: Optional[float]) -> str:
    return '-' if value is None else f'{100 * value:.2f}'


def _number(value: Optional[float]) -> str:
    return '-' if value is None else f'{value:.2f}'


def result_rows(
        runs: List[Dict],
        complexity: Optional[Dict[str, Dict]] = None,
        tasks: Optional[Dict[str, Dict]] = None) -> List[Dict[str, str]]:
    """Table rows (column -> text) of the runs, then of complete groups.

    Args:
        runs: :func:`load_work_dir` results.
        complexity: config name -> ``dict(params=..., flops=...)`` counts;
            adds the params / FLOPs columns.
        tasks: the datasets (:func:`evaluator_tasks`); default SOI-Det's,
            with those of every run's dumped config added.
    """
    if tasks is None:
        tasks = evaluator_tasks(SOI_DET_TASKS_CONFIG)
        for run in runs:
            if run['config']:
                tasks.update(evaluator_tasks(run['config']))
    entries = [(run['name'], PAPER_MODELS.get(run['name']),
                dataset_metrics(run['metrics']), [run['name']])
               for run in runs]
    by_name = {run['name']: run for run in runs}
    for members, paper in PAPER_GROUPS.items():
        if all(name in by_name for name in members):
            entries.append((group_name(members), paper,
                            pooled_group([by_name[m] for m in members],
                                         tasks), list(members)))
    rows = []
    for name, paper, values, members in entries:
        row = {'method': paper.label if paper else name, 'config': name}
        for column, dataset, metric in result_columns(tasks):
            row[column] = _percent(values.get((dataset, metric)))
        row['paper overall mAP'] = _number(paper and paper.overall_map)
        if complexity is not None:
            row['params (M)'] = _number(
                sum(complexity[m]['params'] for m in members) / 1e6)
            row['FLOPs (G)'] = _number(
                sum(complexity[m]['flops'] for m in members) / 1e9)
        rows.append(row)
    return rows


def format_markdown(rows: List[Dict[str, str]]) -> str:
    header = list(rows[0])
    lines = ['| ' + ' | '.join(header) + ' |', '|' + '---|' * len(header)]
    lines += ['| ' + ' | '.join(row[c] for c in header) + ' |' for row in rows]
    return '\n'.join(lines) + '\n'


def write_csv(rows: List[Dict[str, str]], path: str) -> None:
    with open(path, 'w', newline='') as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
