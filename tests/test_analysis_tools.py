"""collect_results.py and its table on fabricated work dirs; the complexity
counts on the mini config and their table on fabricated counts;
benchmark_moe.py on tiny shapes."""
import csv
import json
import os.path as osp
import subprocess
import sys

import pytest
from mmengine.config import Config

from sm3det.analysis.complexity import fix_proposal_count, measure_config
from sm3det.analysis.complexity_table import complexity_rows, format_rows
from sm3det.analysis.results_table import load_work_dir, result_rows
from repository import REPO_ROOT, run_script

MINI_CONFIG = osp.join(
    REPO_ROOT, 'configs/sm3det/sm3det_convnext-mini_fpn_600it_soi-det-mini.py')
SEPARATE_T = ('gfl_convnext-t_fpn_33k_sardet',
              'oriented-rcnn_convnext-t_fpn_33k_dota',
              'oriented-rcnn_convnext-t_fpn_33k_dronevehicle')


def headline(dataset: str, m: float, ap50: float, ap75: float) -> dict:
    return {
        f'soi_det/{dataset}/mAP': m,
        f'soi_det/{dataset}/AP50': ap50,
        f'soi_det/{dataset}/AP75': ap75
    }


def make_work_dir(root, name: str, metrics: dict, dump_config: bool = True):
    """A tools/test.py work dir: test_metrics.json, the dumped config."""
    work_dir = root / name
    work_dir.mkdir()
    (work_dir / 'test_metrics.json').write_text(json.dumps(metrics))
    if dump_config:
        (work_dir / f'{name}.py').write_text('# dumped config\n')
    return str(work_dir)


@pytest.fixture
def work_dirs(tmp_path):
    """SM3Det (all datasets), a run without DroneVehicle, the three
    separate ConvNeXt-T models (work dirs named after their configs)."""
    sm3det = {
        **headline('overall', .5020, .8068, .5379),
        **headline('sar', .6064, .8994, .6506),
        **headline('dota', .4647, .7788, .4824),
        **headline('dronevehicle', .4887, .7799, .5690), 'soi_det/sar/AP_s':
        0.1
    }
    partial = {
        **headline('overall', .40, .70, .45),
        **headline('sar', .50, .80, .55),
        **headline('dota', .35, .60, .40)
    }
    singles = [{
        **headline('overall', m, a, b),
        **headline(d, m, a, b)
    } for d, m, a, b in (('sar', .5731, .8744, .6199),
                         ('dota', .4531, .7770, .4645), ('dronevehicle', .4609,
                                                         .7478, .5279))]
    return ([
        make_work_dir(tmp_path, 'sm3det_convnext-t_fpn_33k_soi-det', sm3det),
        make_work_dir(tmp_path, 'my-variant', partial),
    ] + [
        make_work_dir(tmp_path, name, metrics, dump_config=False)
        for name, metrics in zip(SEPARATE_T, singles)
    ])


def test_collect_results_table(work_dirs, tmp_path):
    out, out_csv = tmp_path / 'results.md', tmp_path / 'results.csv'
    printed = run_script('tools/analysis_tools/collect_results.py', *work_dirs,
                         '--out', out, '--csv', out_csv).stdout
    assert printed.strip() == out.read_text().strip()
    with open(out_csv) as f:
        rows = list(csv.DictReader(f))
    assert [row['method'] for row in rows] == [
        'SM3Det', 'my-variant', 'GFL (SAR only)', 'Oriented R-CNN (DOTA only)',
        'Oriented R-CNN (DroneVehicle only)', '3 separate models (ConvNeXt-T)'
    ]
    sm3det, partial, sar_only, *_, separate = rows
    assert [
        sm3det[c]
        for c in ('overall mAP', 'overall AP50', 'overall AP75', 'SAR mAP',
                  'DOTA mAP', 'DroneVehicle mAP', 'paper overall mAP')
    ] == ['50.20', '80.68', '53.79', '60.64', '46.47', '48.87', '50.20']
    assert partial['DroneVehicle mAP'] == '-'
    assert partial['paper overall mAP'] == '-'
    assert sar_only['DOTA mAP'] == '-' and sar_only['SAR mAP'] == '57.31'
    # Pooled over 6 + 15 + 5 classes, as the paper's 48.23 / 79.39 / 51.26.
    assert [
        separate[c] for c in ('overall mAP', 'overall AP50', 'overall AP75',
                              'SAR mAP', 'DOTA mAP', 'DroneVehicle mAP')
    ] == ['48.23', '79.39', '51.26', '57.31', '45.31', '46.09']
    assert separate['config'].startswith('sum: gfl_convnext-t')
    assert 'params (M)' not in sm3det
    markdown = out.read_text().splitlines()
    assert markdown[0].startswith('| method | config | overall mAP |')
    assert len(markdown) == 2 + len(rows)


def test_collect_results_with_complexity(work_dirs):
    runs = [load_work_dir(d) for d in work_dirs[2:]]
    counts = dict(
        zip(SEPARATE_T, ({
            'params': 36e6,
            'flops': 131e9
        }, {
            'params': 45e6,
            'flops': 136e9
        }, {
            'params': 45e6,
            'flops': 136e9
        })))
    rows = result_rows(runs, counts)
    assert [(r['params (M)'], r['FLOPs (G)'])
            for r in rows] == [('36.00', '131.00'), ('45.00', '136.00'),
                               ('45.00', '136.00'), ('126.00', '403.00')]


def test_collect_results_bad_work_dirs(tmp_path):
    with pytest.raises(FileNotFoundError, match='test_metrics.json'):
        load_work_dir(str(tmp_path))
    work_dir = make_work_dir(tmp_path, 'run', headline('sar', .1, .2, .3))
    (tmp_path / 'run' / 'other.py').write_text('')
    with pytest.raises(ValueError, match='several configs'):
        load_work_dir(work_dir)


def test_complexity_rows_compare_with_the_paper():
    measured = {
        'sm3det_convnext-t_fpn_33k_soi-det':
        dict(params=178.1e6, flops=487.4e9),
        'sm3det-moe-stage4_convnext-t_fpn_33k_soi-det':
        dict(params=132e6, flops=480e9),  # FLOPs 14% off
        'sm3det_convnext-l_fpn_33k_soi-det':
        dict(params=769e6, flops=None),
        'my-config':
        dict(params=1e6, flops=2e9),
        **{
            name: dict(params=42e6, flops=403e9 / 3)
            for name in SEPARATE_T
        },
    }
    rows = complexity_rows(measured)
    by_name = {row['name']: row for row in rows}
    assert by_name['sm3det_convnext-t_fpn_33k_soi-det']['matches'] is True
    stage4 = by_name['sm3det-moe-stage4_convnext-t_fpn_33k_soi-det']
    assert stage4['matches'] is False
    assert stage4['flops_diff'] == pytest.approx(480 / 422 - 1)
    large = by_name['sm3det_convnext-l_fpn_33k_soi-det']
    assert large['matches'] is True and large['flops_diff'] is None
    assert by_name['my-config']['matches'] is None
    group = rows[-1]
    assert group['label'] == '3 separate models (ConvNeXt-T)'
    assert (group['params_m'], group['flops_g']) == pytest.approx((126, 403))
    table = format_rows(rows, markdown=True).splitlines()
    assert table[0].startswith('| config | paper row | params (M) |')
    assert len(table) == 2 + len(rows)
    assert '| NO |' in table[3]  # the stage-4 row
    assert 'params diff' in format_rows(rows)


def test_model_complexity_counts_the_mini_config():
    counts = measure_config(MINI_CONFIG, (64, 64), num_proposals=50)
    meta = measure_config(MINI_CONFIG, (64, 64), params_only=True)
    assert counts['params'] == meta['params'] > 1e6
    assert meta['flops'] is None
    assert counts['flops'] > 0
    # The command line prints the same count in its table.
    table = run_script('tools/analysis_tools/model_complexity.py', MINI_CONFIG,
                       '--params-only', '--markdown').stdout
    name = osp.splitext(osp.basename(MINI_CONFIG))[0]
    assert f'| {name} |  | {meta["params"] / 1e6:.2f} | - |' in table


# benchmark_moe.py's main() in a fresh interpreter, its layer shapes made
# tiny: the tool is run, not imported, by the tests.
BENCHMARK_ON_TINY_SHAPES = """
import runpy, sys
tool = runpy.run_path(sys.argv[1])
tool['LAYER_SHAPES'].clear()
tool['LAYER_SHAPES'].update(tiny=(1, 4, 4, 16), tinier=(1, 2, 2, 8))
tool['main'](sys.argv[2:])
"""


@pytest.fixture(scope='module')
def benchmark_moe_output():
    """What benchmark_moe.py prints per precision (fp32, bf16), one run."""
    process = subprocess.run([
        sys.executable, '-c', BENCHMARK_ON_TINY_SHAPES,
        osp.join(REPO_ROOT, 'tools/analysis_tools/benchmark_moe.py'),
        '--repeats', '1', '--skip-backbone', '--precisions', 'fp32', 'bf16',
        '--backends', 'auto', 'grouped_mm', '--glibc-default'
    ],
                             capture_output=True,
                             text=True,
                             cwd=REPO_ROOT)
    assert process.returncode == 0, process.stderr
    blocks = {}
    for line in process.stdout.splitlines():
        if line.startswith('device '):
            lines = blocks[line.split(', ')[-2]] = []
        lines.append(line)
    return blocks


@pytest.mark.parametrize('precision', ['fp32', 'bf16'])
def test_benchmark_moe_prints_ratios_and_op_counts(precision,
                                                   benchmark_moe_output):
    lines = benchmark_moe_output[precision]
    assert f', {precision}, ' in lines[0]
    titles = [line for line in lines[1:] if line.startswith('layer ')]
    assert [t.split()[1] for t in titles] == ['tiny', 'tinier']
    models = [line.split()[0] for line in lines[1:] if line.startswith(' ')]
    assert models == ['dense', 'GridMoE', 'GridMoE'] * 2
    rows = [line for line in lines[1:] if line.startswith(' ')]
    assert all('x dense' in row and row.endswith(' non-view)') for row in rows)
    # On CPU auto computes one expert at a time: more operations than the
    # forced grouped GEMM.
    ops = [int(row.split()[-5]) for row in rows]
    assert ops[2] < ops[1] and ops[5] < ops[4]


def test_proposal_count_reaches_stock_two_stage_heads():
    """FLOPs count two-stage heads on the paper's 1000 RoIs, also where the
    RPN's test settings come from the stock mmrotate config."""
    cfg = Config.fromfile(
        osp.join(REPO_ROOT,
                 'configs/sm3det/sm3det_convnext-t_fpn_33k_soi-det.py'))
    model = fix_proposal_count(cfg.model, 1000)
    rpn = {
        name: task.detector.get('test_cfg', {}).get('rpn')
        for name, task in model.tasks.items()
    }
    assert rpn['sar'] is None  # GFL: one stage
    assert rpn['dota'].max_per_img == rpn['dronevehicle'].max_per_img == 1000
