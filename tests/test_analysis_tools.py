"""collect_results.py on fabricated work dirs; model_complexity.py on the
mini config and on fabricated counts; benchmark_moe.py on tiny shapes."""
import csv
import json
import os.path as osp
import sys

import pytest

from tool_loader import REPO_ROOT, load_tool

MINI_CONFIG = osp.join(
    REPO_ROOT, 'configs/sm3det/sm3det_convnext-mini_fpn_600it_soi-det-mini.py')
SEPARATE_T = ('gfl_convnext-t_fpn_33k_sardet',
              'oriented-rcnn_convnext-t_fpn_33k_dota',
              'oriented-rcnn_convnext-t_fpn_33k_dronevehicle')

collect_results = load_tool('tools/analysis_tools/collect_results.py')
model_complexity = load_tool('tools/analysis_tools/model_complexity.py')
benchmark_moe = load_tool('tools/analysis_tools/benchmark_moe.py')


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


def test_collect_results_table(work_dirs, tmp_path, monkeypatch, capsys):
    out, out_csv = tmp_path / 'results.md', tmp_path / 'results.csv'
    monkeypatch.setattr(sys, 'argv', [
        'collect_results.py', *work_dirs, '--out',
        str(out), '--csv',
        str(out_csv)
    ])
    collect_results.main()
    assert capsys.readouterr().out.strip() == out.read_text().strip()
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
    runs = [collect_results.load_work_dir(d) for d in work_dirs[2:]]
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
    rows = collect_results.result_rows(runs, counts)
    assert [(r['params (M)'], r['FLOPs (G)'])
            for r in rows] == [('36.00', '131.00'), ('45.00', '136.00'),
                               ('45.00', '136.00'), ('126.00', '403.00')]


def test_collect_results_bad_work_dirs(tmp_path):
    with pytest.raises(FileNotFoundError, match='test_metrics.json'):
        collect_results.load_work_dir(str(tmp_path))
    work_dir = make_work_dir(tmp_path, 'run', headline('sar', .1, .2, .3))
    (tmp_path / 'run' / 'other.py').write_text('')
    with pytest.raises(ValueError, match='several configs'):
        collect_results.load_work_dir(work_dir)


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
    rows = model_complexity.complexity_rows(measured)
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
    table = model_complexity.format_rows(rows, markdown=True).splitlines()
    assert table[0].startswith('| config | paper row | params (M) |')
    assert len(table) == 2 + len(rows)
    assert '| NO |' in table[3]  # the stage-4 row
    assert 'params diff' in model_complexity.format_rows(rows)


def test_model_complexity_counts_the_mini_config():
    counts = model_complexity.measure_config(
        MINI_CONFIG, (64, 64), num_proposals=50)
    meta = model_complexity.measure_config(
        MINI_CONFIG, (64, 64), params_only=True)
    assert counts['params'] == meta['params'] > 1e6
    assert meta['flops'] is None
    assert counts['flops'] > 0


@pytest.mark.parametrize('precision', ['fp32', 'bf16'])
def test_benchmark_moe_prints_ratios_and_op_counts(precision, monkeypatch,
                                                   capsys):
    monkeypatch.setattr(benchmark_moe, 'LAYER_SHAPES', {
        'tiny': (1, 4, 4, 16),
        'tinier': (1, 2, 2, 8)
    })
    benchmark_moe.main([
        '--repeats', '1', '--skip-backbone', '--precisions', precision,
        '--backends', 'auto', 'loop', '--glibc-default'
    ])
    lines = capsys.readouterr().out.splitlines()
    assert f', {precision}, ' in lines[0]
    titles = [line for line in lines[1:] if line.startswith('layer ')]
    assert [t.split()[1] for t in titles] == ['tiny', 'tinier']
    models = [line.split()[0] for line in lines[1:] if line.startswith(' ')]
    assert models == ['dense', 'new', 'new', 'old'] * 2
    rows = [line for line in lines[1:] if line.startswith(' ')]
    assert all('x dense' in row and row.endswith(' non-view)') for row in rows)
    # The stacked layer needs fewer operations than the per-expert loop.
    ops = [int(row.split()[-5]) for row in rows]
    assert ops[1] < ops[3]
