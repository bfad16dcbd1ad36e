"""The ONNX benchmark (``sm3det/export/benchmark.py``,
``tools/analysis_tools/benchmark_onnx.py``) on SM3Det-mini with random
weights and a generated two-image SOI-Det-mini.

* Timing: medians of interleaved calls, warm-up rounds not counted.
* Each task is exported and both runtimes detect the same image (the task's
  first test image at the test scale) with the same count; without a test
  set, a random image.
* Per-sensor exports are written where the validation set exists, and
  reported as not made where it does not.
* The report's tables; the tool runs and prints them.
"""
import os.path as osp
import time
from unittest import mock

import numpy as np
import pytest
import torch
from mmengine.config import Config

from sm3det.datasets.preparation import generate_soi_det_mini
from sm3det.export import benchmark
from sm3det.export.benchmark import (BackboneTiming, SensorExport, TaskTiming,
                                     interleaved_medians)
from mini_training import mini_cfg
from repository import run_script


@pytest.fixture(scope='module')
def mini(tmp_path_factory):
    """(config path, config) of SM3Det-mini on two test images per part."""
    root = tmp_path_factory.mktemp('bench')
    generate_soi_det_mini(
        str(root / 'data'), num_train=1, num_test=2, size=256, seed=1)
    cfg = mini_cfg(str(root / 'data'), str(root / 'work'))
    path = str(root / 'mini.py')
    cfg.dump(path)
    return path, cfg


@pytest.fixture(scope='module')
def inferencer(mini):
    torch.set_num_threads(1)
    return benchmark.load_model(mini[0], None)


def test_interleaved_medians_time_each_call_after_warmup():
    calls = []

    def call(name, seconds):

        def run():
            calls.append(name)
            time.sleep(seconds)

        return run

    short, long = interleaved_medians((call('a', 0.002), call('b', 0.02)),
                                      warmup=2,
                                      repeats=3)
    assert calls == ['a', 'b'] * 5
    assert 2 <= short < 15 and 20 <= long < 60
    with pytest.raises(ValueError, match='repeats'):
        interleaved_medians((call('a', 0), ), warmup=1, repeats=0)


def test_benchmark_model_times_both_runtimes_on_the_task_image(
        mini, inferencer, tmp_path):
    timings, backbone = benchmark.benchmark_model(
        inferencer,
        'mini', ('sar', 'dota'),
        str(tmp_path),
        mini[1],
        threads=1,
        warmup=0,
        repeats=1)
    assert [(t.task, t.image, t.size)
            for t in timings] == [('sar', '000000.jpg', (256, 256)),
                                  ('dota', 'P0000.png', (256, 256))]
    for t in timings:
        onnx_path = tmp_path / f'mini_{t.task}.onnx'
        assert t.onnx_mib == pytest.approx(
            osp.getsize(onnx_path) / 2**20) and t.onnx_mib > 1
        # the same work on the same image: the same detections
        assert t.torch_count == t.ort_count
        assert t.torch_ms > 0 and 0 < t.ort_graph_ms and t.ort_ms > 0
    assert backbone.scale == 'mini' and backbone.size == (256, 256)
    assert backbone.sparse_ms > 0 and backbone.gathered_ms > 0


def test_task_image_without_a_test_set_is_random(mini, inferencer):
    cfg = Config(mini[1].to_dict())
    for dataset in cfg.test_dataloader.dataset.datasets:
        dataset.data_root = '/nonexistent/'
    image, name = benchmark.task_image(cfg, 'dota', (320, 256),
                                       inferencer.scalings['dota'])
    again, _ = benchmark.task_image(cfg, 'dota', (320, 256),
                                    inferencer.scalings['dota'])
    assert name == 'random'
    assert image.shape == (256, 320, 3) and image.dtype == np.uint8
    np.testing.assert_array_equal(image, again)


def test_sensor_exports_where_the_validation_set_exists(
        mini, inferencer, tmp_path):
    path, cfg = mini
    missing = Config(cfg.to_dict())
    missing.val_dataloader.dataset.datasets[0].data_root = '/nonexistent/'
    missing_path = str(tmp_path / 'missing.py')
    missing.dump(missing_path)
    assert benchmark.sensor_exports(
        inferencer, missing_path, None, 'x', ['sar'],
        str(tmp_path)) == [SensorExport('x', 'sar', note=mock.ANY)]

    export, = benchmark.sensor_exports(inferencer, path, None, 'mini', ['sar'],
                                       str(tmp_path))
    onnx_path = tmp_path / 'mini_sar_export.onnx'
    assert export.onnx_mib == pytest.approx(osp.getsize(onnx_path) / 2**20)
    # the other heads are dropped; random routing may keep every expert
    assert export.params[1] < export.params[0]
    assert 0 < export.experts[0] <= export.experts[1]
    assert osp.isfile(tmp_path / 'mini_random_weights.pth')


def test_format_report_tables():
    report = benchmark.format_report([
        TaskTiming('mini', 'sar', '000000.jpg',
                   (256, 256), 50., 20., 15., 3, 3, 28.46)
    ], [BackboneTiming('mini', (256, 256), 26., 39.)], [
        SensorExport('mini', 'sar', (9_255_000, 7_433_000), (30, 32), 27.04),
        SensorExport('paper', 'sar', note='not made: no data')
    ])
    lines = report.splitlines()
    assert '| mini | sar | 000000.jpg at 256x256 | 50.0 | 20.0 (15.0) | '\
        '2.50 | 3 / 3 | 28.5 |' in lines
    assert '| mini | 256x256 | 26.0 | 39.0 | 1.50 |' in lines
    assert '| mini | sar | 9.255M -> 7.433M | 30 / 32 | 27.0 |' in lines
    assert '| paper | sar | not made: no data | | |' in lines


def test_tool_prints_the_tables(tmp_path):
    process = run_script('tools/analysis_tools/benchmark_onnx.py', '--scales',
                         'mini', '--tasks', 'sar', '--repeats', 1, '--warmup',
                         0, '--threads', 1, '--work-dir', tmp_path)
    assert '1 threads (PyTorch and onnxruntime), median of 1 runs' in \
        process.stdout
    assert '| mini | sar |' in process.stdout
    assert osp.isfile(tmp_path / 'mini_sar.onnx')
