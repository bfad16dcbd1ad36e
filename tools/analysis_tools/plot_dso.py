"""Plot the DSO learning-rate multipliers of a training run over iterations.

``DSOHook`` publishes one scalar per sub-module (``dso_<name>``) and the shared
``dso_shared``; mmengine's logger writes them, every logging interval, as one
JSON object per line into ``<run>/vis_data/scalars.json`` (and the run's
``<timestamp>.json``). This tool reads such a file
(:mod:`sm3det.analysis.dso_scalars`) and draws the multipliers.

Usage:
    python tools/analysis_tools/plot_dso.py work_dirs/<cfg>/<timestamp> \
        --out dso.png
"""
import argparse
import os
import os.path as osp
from typing import Dict, List

from sm3det.analysis.dso_scalars import find_scalars_file, load_dso_scalars


def plot_dso(steps: List[int], series: Dict[str, List[float]],
             out_file: str) -> None:
    """Draw one line per sub-module (the shared gamma dashed) to a PNG."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4.5))
    for name in sorted(series):
        ax.plot(
            steps,
            series[name],
            label=name,
            linestyle='--' if name == 'shared' else '-',
            linewidth=2 if name == 'shared' else 1.2)
    ax.axhline(1.0, color='grey', linewidth=0.8)
    ax.set_xlabel('iteration')
    ax.set_ylabel('learning-rate multiplier')
    ax.set_title('Dynamic Sub-module Optimisation')
    ax.legend(loc='best', fontsize='small')
    fig.tight_layout()
    os.makedirs(osp.dirname(osp.abspath(out_file)), exist_ok=True)
    fig.savefig(out_file, dpi=120)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        'log', help='scalars.json / <timestamp>.json, or a run directory')
    parser.add_argument(
        '--out', help='PNG file (default: dso_multipliers.png beside the log)')
    args = parser.parse_args()
    log_file = find_scalars_file(args.log)
    out_file = args.out or osp.join(
        osp.dirname(log_file), 'dso_multipliers.png')
    steps, series = load_dso_scalars(log_file)
    plot_dso(steps, series, out_file)
    print(f'{len(steps)} points of {sorted(series)} from {log_file} '
          f'-> {out_file}')


if __name__ == '__main__':
    main()
