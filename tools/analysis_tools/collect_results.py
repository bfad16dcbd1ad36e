"""One results table, like the paper's Table 1, from test work dirs.

    python tools/analysis_tools/collect_results.py WORK_DIR [WORK_DIR ...]
        [--out results.md] [--csv results.csv] [--complexity] [--shape 800]
        [--tasks-config CONFIG]

Each WORK_DIR is a ``--work-dir`` of tools/test.py: it holds
``test_metrics.json`` (SOIDetMetric's keys such as ``soi_det/overall/mAP``,
fractions) and the config the runner dumped there (``<config name>.py``);
without a dumped config the directory's name is the config name (test.py's
default work dir is ``work_dirs/<config name>``).

The datasets (columns, display names, class counts) are the tasks of the
test evaluator (``SOIDetMetric``'s ``tasks``) of ``--tasks-config``, by
default SOI-Det's (configs/_base_/datasets/soi_det.py), and of every dumped
config: a fourth dataset gets its column from its config.

The rows (one per work dir, plus the paper's combined row for the three
separate models) are :mod:`sm3det.analysis.results_table`'s.
``--complexity`` adds params (M) and FLOPs (G), counted as
model_complexity.py counts them on the dumped config (about a minute per
ConvNeXt-T config on a CPU).
"""
import argparse

from sm3det.analysis.complexity import measure_config
from sm3det.analysis.results_table import (evaluator_tasks, format_markdown,
                                           load_work_dir, result_rows,
                                           write_csv)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('work_dirs', nargs='+', metavar='WORK_DIR')
    parser.add_argument('--out', help='write the Markdown table here')
    parser.add_argument('--csv', help='write the table as CSV here')
    parser.add_argument(
        '--complexity',
        action='store_true',
        help='add params and FLOPs (counted, slow)')
    parser.add_argument(
        '--shape',
        type=int,
        nargs='+',
        default=[800],
        help='input height [width] for --complexity')
    parser.add_argument(
        '--tasks-config',
        help='a config whose test evaluator names the '
        'datasets (default: SOI-Det and the dumped configs)')
    args = parser.parse_args()
    if len(args.shape) > 2:
        parser.error('--shape takes one or two numbers')
    shape = args.shape * 2 if len(args.shape) == 1 else args.shape

    runs = [load_work_dir(work_dir) for work_dir in args.work_dirs]
    complexity = None
    if args.complexity:
        missing = [run['name'] for run in runs if run['config'] is None]
        if missing:
            parser.error(f'--complexity needs the dumped config in each work '
                         f'dir; none for {missing}')
        complexity = {
            run['name']: measure_config(run['config'], shape)
            for run in runs
        }
    tasks = None
    if args.tasks_config:
        tasks = evaluator_tasks(args.tasks_config)
        if not tasks:
            parser.error(f'{args.tasks_config} has no test_evaluator tasks')
    rows = result_rows(runs, complexity, tasks)
    table = format_markdown(rows)
    print(table)
    if args.out:
        with open(args.out, 'w') as f:
            f.write(table)
    if args.csv:
        write_csv(rows, args.csv)


if __name__ == '__main__':
    main()
