"""ONNX export of each task of a briefly trained SM3Det-mini, run by
onnxruntime through the numpy runtime (``sm3det.deploy``), against the
PyTorch model.

* The exporter's own check passes for every task (test images and a crop):
  detections after NMS pair up, boxes within 1e-2 px, scores within 1e-4,
  same count; images of other sizes too (the graph's dynamic shapes).
* The mAP of each task through the runtime equals the PyTorch mAP to 0.1
  points.
* The graphs use standard operators only.
* The output of ``export_task.py`` (one head, kept experts) exports too.
* Sliding windows through the runtime find what the PyTorch sliding window
  finds.
* Bad input: an unknown task, a checkpoint without the task's head, an
  image of the wrong channel count.
"""
import json
import os.path as osp

import cv2
import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from mmengine.config import Config
from mmrotate.registry import DATASETS

from sm3det.apis import SM3DetInferencer
from sm3det.apis.task_export import export_task, task_dataset_cfg
from sm3det.deploy import OnnxDetector, read_meta
from sm3det.export import OPSET, compare_detections, export_onnx
from sm3det.export.evaluation import evaluate_task
from sm3det.export.exporter import check_image, trace_module
from sm3det.export.parity import BOX_TOL, SCORE_TOL
from repository import REPO_ROOT, run_script

TASKS = ('sar', 'dota', 'dronevehicle')


class Detections:
    """PyTorch predictions as the arrays the runtime gives."""

    def __init__(self, pred_instances):
        self.boxes = pred_instances.bboxes.tensor.numpy()
        self.scores = pred_instances.scores.numpy()
        self.labels = pred_instances.labels.numpy()


@pytest.fixture(scope='module')
def config(trained_mini, tmp_path_factory):
    path = str(tmp_path_factory.mktemp('onnx') / 'sm3det_mini.py')
    trained_mini.cfg.dump(path)
    return path


@pytest.fixture(scope='module')
def exports(config, trained_mini, tmp_path_factory):
    """Every task exported (and self-checked) by the package's exporter."""
    out_dir = str(tmp_path_factory.mktemp('onnx_out'))
    return {
        task: export_onnx(config, trained_mini.checkpoint, task, out_dir)
        for task in TASKS
    }


@pytest.fixture(scope='module')
def inferencers(config, trained_mini):
    return {
        task:
        SM3DetInferencer(
            config, trained_mini.checkpoint, task=task, device='cpu')
        for task in TASKS
    }


def torch_detections(inferencer, image):
    return Detections(
        inferencer(image,
                   return_datasample=True)['predictions'][0].pred_instances)


def mini_test_image(config, task, index):
    """The ``index``-th image of ``task``'s test set."""
    dataset = DATASETS.build(
        task_dataset_cfg(Config.fromfile(config), task, 'test'))
    return dataset.get_data_info(index)['img_path']


@pytest.mark.parametrize('task', TASKS)
def test_self_check_passes_with_detections(exports, task):
    agreements = exports[task].agreements
    assert len(agreements) == 4  # three test images and a crop
    assert all(a.ok for _, a in agreements)
    assert sum(a.count[0] for _, a in agreements) > 0, 'nothing compared'


@pytest.mark.parametrize('task', TASKS)
def test_other_image_sizes_match(exports, inferencers, config, task):
    """Wider, taller and smaller than the test scale: equal detections."""
    detector = OnnxDetector(exports[task].onnx_path)
    image = cv2.imread(mini_test_image(config, task, 1))
    for size in ((384, 200), (150, 330), (96, 128)):
        agreement = check_image(inferencers[task], detector,
                                cv2.resize(image, size))
        assert agreement.ok, (size, agreement.describe())
        assert agreement.max_box_diff <= BOX_TOL
        assert agreement.max_score_diff <= SCORE_TOL


@pytest.mark.parametrize('task', TASKS)
def test_runtime_map_equals_pytorch_map(exports, inferencers, config, task):
    cfg = Config.fromfile(config)
    detector = OnnxDetector(exports[task].onnx_path)
    onnx_metrics = evaluate_task(detector, cfg, task)
    torch_metrics = evaluate_task(
        lambda path: torch_detections(inferencers[task], path), cfg, task)
    key = f'soi_det/{task}/mAP'
    assert torch_metrics[key] > 0.01  # the brief training learned something
    assert abs(onnx_metrics[key] - torch_metrics[key]) <= 0.001


def test_graphs_use_standard_operators_only(exports):
    for task, export in exports.items():
        model = onnx.load(export.onnx_path)
        assert [
            o.version for o in model.opset_import
            if o.domain in ('', 'ai.onnx')
        ] == [OPSET]
        assert {n.domain for n in model.graph.node} <= {''}
        ops = {n.op_type for n in model.graph.node}
        if task == 'sar':
            assert 'NonMaxSuppression' not in ops  # the runtime's NMS
        else:
            assert {'NonMaxSuppression', 'GridSample'} <= ops
        meta = read_meta(export.onnx_path)
        assert meta.box_type == ('hbox' if task == 'sar' else 'rbox')


@pytest.fixture(scope='module')
def sar_export(config, trained_mini):
    """export_task's SAR model: one head, the experts SAR's images use."""
    return export_task(
        Config.fromfile(config),
        trained_mini.checkpoint,
        'sar',
        num_images=1000,
        threshold=0.)


def test_export_of_per_sensor_export(sar_export, exports, tmp_path):
    """export_task's SAR model exports and passes the check; its file is
    not larger than the full model's SAR export."""
    exported = sar_export
    sar_config = str(tmp_path / 'sm3det_mini_sar.py')
    sar_checkpoint = str(tmp_path / 'sm3det_mini_sar.pth')
    exported.config.dump(sar_config)
    torch.save(exported.checkpoint, sar_checkpoint)
    result = export_onnx(sar_config, sar_checkpoint, out_dir=str(tmp_path))
    assert result.meta.task == 'sar'
    assert all(a.ok for _, a in result.agreements)
    full = exports['sar'].onnx_path
    assert osp.getsize(result.onnx_path) <= osp.getsize(full)


def test_sliding_window_matches_pytorch(exports, inferencers, config):
    """A 2x2 mosaic of test images, in 256-pixel patches overlapping by 64:
    the runtime merges what the PyTorch sliding window merges."""
    task = 'dota'
    tiles = [cv2.imread(mini_test_image(config, task, i)) for i in range(4)]
    mosaic = np.concatenate(
        [np.concatenate(tiles[:2], axis=1),
         np.concatenate(tiles[2:], axis=1)])
    onnx_result = OnnxDetector(exports[task].onnx_path).predict_by_patches(
        mosaic, patch_size=256, patch_overlap=64)
    torch_result = Detections(inferencers[task](
        mosaic,
        sliding_window=True,
        patch_size=256,
        patch_overlap=64,
        return_datasample=True)['predictions'][0].pred_instances)
    agreement = compare_detections(onnx_result, torch_result)
    assert agreement.ok, agreement.describe()
    assert agreement.count[0] > 0


def test_bad_input(config, trained_mini, exports, sar_export, tmp_path):
    with pytest.raises(ValueError, match="unknown task 'optical'"):
        export_onnx(config, trained_mini.checkpoint, 'optical', str(tmp_path))
    # A checkpoint without the DOTA head: the SAR-only model's.
    checkpoint = str(tmp_path / 'sar_only.pth')
    torch.save(sar_export.checkpoint, checkpoint)
    with pytest.raises(ValueError, match='sar_only.pth does not match'):
        export_onnx(config, checkpoint, 'dota', str(tmp_path))
    detector = OnnxDetector(exports['dota'].onnx_path)
    for channels in (2, 4):
        with pytest.raises(ValueError, match='channels'):
            detector(np.zeros((64, 64, channels), np.uint8))


def test_tool_exports_and_fails_on_disagreement(config, trained_mini,
                                                tmp_path):
    """The command line: an export that passes; an impossible tolerance
    makes it fail with the disagreement named."""
    process = run_script('tools/deployment/export_onnx.py', config,
                         trained_mini.checkpoint, '--task', 'sar', '--out',
                         tmp_path, '--num-check-images', '1')
    assert 'onnxruntime equals PyTorch' in process.stdout
    assert osp.exists(tmp_path / 'sm3det_mini_sar.onnx')
    assert osp.exists(tmp_path / 'sm3det_mini_sar.json')
    failing = run_script(
        'tools/deployment/export_onnx.py',
        config,
        trained_mini.checkpoint,
        '--task',
        'sar',
        '--out',
        tmp_path,
        '--num-check-images',
        '1',
        '--score-tol',
        '-1',
        check=False)
    assert failing.returncode == 1
    assert 'disagree' in failing.stderr


def test_demo_with_onnxruntime_backend(exports, config, tmp_path):
    """image_demo.py MODEL.onnx IMAGE: the runtime's detections as JSON, and
    the drawing."""
    image = mini_test_image(config, 'dota', 0)
    onnx_path = exports['dota'].onnx_path
    process = run_script('tools/demo/image_demo.py', onnx_path, image,
                         '--out-dir', tmp_path, '--score-thr', '0.05')
    expected = OnnxDetector(onnx_path)(image)
    assert f'{len(expected.scores)} detections' in process.stdout
    name = osp.splitext(osp.basename(image))[0]
    pred = json.load(open(tmp_path / 'preds' / f'{name}.json'))
    assert pred['task'] == 'dota' and pred['box_type'] == 'rbox'
    np.testing.assert_allclose(pred['bboxes'], expected.boxes, rtol=1e-6)
    np.testing.assert_allclose(pred['scores'], expected.scores, rtol=1e-6)
    assert pred['labels'] == expected.labels.tolist()
    drawn = cv2.imread(str(tmp_path / 'vis' / osp.basename(image)))
    assert drawn.shape == cv2.imread(image).shape
    assert (drawn != cv2.imread(image)).any()


class Pyramid(torch.nn.Module):
    """Backbone and FPN of an SM3Det: image -> its pyramid levels."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, image):
        return self.model.extract_feat(image)


@pytest.mark.parametrize('backbone', ['van', 'lsknet', 'pvtv2'])
def test_other_moe_backbones_export(backbone, tmp_path):
    """The paper's other backbones (their GridMoE layers, PVTv2's attention)
    export with dynamic image sizes: the pyramid of an image of another size
    than the traced one equals PyTorch's. (The heads are the ConvNeXt
    tests'; random weights would put many NMS decisions on a knife's
    edge.)"""
    config = osp.join(
        REPO_ROOT, 'configs/sm3det/sm3det_'
        f'{backbone}-mini_fpn_600it_soi-det-mini.py')
    model = SM3DetInferencer(config, None, task='dota', device='cpu').model
    onnx_path = str(tmp_path / f'{backbone}.onnx')
    levels = [f'p{i}' for i in range(model.neck.num_outs)]
    trace_module(
        Pyramid(model), (torch.randn(1, 3, 256, 256), ), onnx_path, ['image'],
        levels, {
            name: {
                2: f'{name}_height',
                3: f'{name}_width'
            }
            for name in ['image'] + levels
        })
    image = torch.randn(1, 3, 192, 320)
    with torch.no_grad():
        expected = model.extract_feat(image)
    got = ort.InferenceSession(onnx_path).run(None, {'image': image.numpy()})
    for level, (ours, theirs) in enumerate(zip(got, expected)):
        assert ours.shape == tuple(theirs.shape), level
        scale = theirs.abs().max().item()
        assert np.abs(ours - theirs.numpy()).max() <= 1e-4 * scale, level
