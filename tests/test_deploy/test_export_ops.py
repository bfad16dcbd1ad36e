"""The pieces of the ONNX export that replace stock operations, against the
stock ones: rotated RoIAlign with GridSample, NMS as NonMaxSuppression, the
midpoint-offset decoding without OpenCV, the GridMoE's gathered dispatch,
and
the detection pairing of the parity check."""
import os.path as osp
import warnings
from types import SimpleNamespace
from unittest import mock

import numpy as np
import onnxruntime as ort
import pytest
import torch
from mmcv.ops import RoIAlignRotated, nms
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmrotate.models.task_modules.coders import MidpointOffsetCoder
from mmrotate.registry import MODELS

from sm3det.export.onnx_ops import nms_indices
from sm3det.export.oriented_rcnn_graph import midpoint_offset_decode
from sm3det.export.parity import compare_detections, favour
from sm3det.export.rotated_roi_align import roi_align_rotated
from sm3det.export.task_graph import TaskGraph
from sm3det.models.layers import grid_moe, keep_experts
from sm3det.models.layers.expert_dispatch import forced_expert_backend
from repository import REPO_ROOT


def export_and_session(module, args, path, names, dynamic):
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        torch.onnx.export(
            module,
            args,
            str(path),
            dynamo=False,
            opset_version=17,
            input_names=names,
            dynamic_axes=dynamic)
    return ort.InferenceSession(str(path))


def random_rois(count, height, width, stride, generator):
    """Rotated RoIs in image pixels, some reaching past the map."""
    u = torch.rand(count, 5, generator=generator)
    return torch.stack([
        u[:, 0] * width * stride * 1.4 - 2 * stride,
        u[:, 1] * height * stride * 1.4 - 2 * stride, u[:, 2] * 60 + 1,
        u[:, 3] * 40 + 1, (u[:, 4] - 0.5) * 3.2
    ], 1)


class RoIAlignRotatedGraph(torch.nn.Module):

    def forward(self, feat, rois):
        return roi_align_rotated(feat, rois, (7, 7), 0.25, 2, True, True)


def test_roi_align_rotated_equals_mmcv_in_torch_and_onnxruntime(tmp_path):
    generator = torch.Generator().manual_seed(0)
    feat = torch.randn(1, 8, 13, 17, generator=generator)
    rois = random_rois(300, 13, 17, 4, generator)
    stock = RoIAlignRotated((7, 7), 0.25, 2, aligned=True, clockwise=True)

    def reference(f, r):
        return stock(f, torch.cat([r.new_zeros(len(r), 1), r], 1)).numpy()

    assert np.abs(RoIAlignRotatedGraph()(feat, rois).numpy() -
                  reference(feat, rois)).max() < 1e-5
    session = export_and_session(RoIAlignRotatedGraph(), (feat, rois),
                                 tmp_path / 'roi.onnx', ['feat', 'rois'], {
                                     'feat': {
                                         2: 'h',
                                         3: 'w'
                                     },
                                     'rois': {
                                         0: 'n'
                                     }
                                 })
    other = torch.randn(1, 8, 9, 23, generator=generator)
    for f, r in ((feat, rois), (other, rois[:50]), (other, rois[:0])):
        out = session.run(None, dict(feat=f.numpy(), rois=r.numpy()))[0]
        assert out.shape == (len(r), 8, 7, 7)
        if len(r):
            assert np.abs(out - reference(f, r)).max() < 1e-5
    with pytest.raises(ValueError, match='sampling_ratio'):
        roi_align_rotated(feat, rois, (7, 7), 0.25, 0, True, True)


class NMSGraph(torch.nn.Module):

    def forward(self, boxes, scores):
        return nms_indices(boxes, scores, 0.5)


def test_nms_is_onnx_non_max_suppression_with_mmcv_results(tmp_path):
    generator = torch.Generator().manual_seed(1)

    def scene(count):
        corner = torch.rand(count, 2, generator=generator) * 100
        size = torch.rand(count, 2, generator=generator) * 30 + 1
        return (torch.cat([corner, corner + size],
                          1), torch.rand(count, generator=generator))

    boxes, scores = scene(200)
    assert torch.equal(NMSGraph()(boxes, scores), nms(boxes, scores, 0.5)[1])
    session = export_and_session(NMSGraph(), (boxes, scores),
                                 tmp_path / 'nms.onnx', ['boxes', 'scores'], {
                                     'boxes': {
                                         0: 'n'
                                     },
                                     'scores': {
                                         0: 'n'
                                     }
                                 })
    assert [
        n.op_type
        for n in __import__('onnx').load(str(tmp_path / 'nms.onnx')).graph.node
    ].count('NonMaxSuppression') == 1
    for count in (200, 37):
        boxes, scores = scene(count)
        kept = session.run(None,
                           dict(boxes=boxes.numpy(), scores=scores.numpy()))[0]
        assert kept.tolist() == nms(boxes, scores, 0.5)[1].tolist()


def test_midpoint_offset_decoding_equals_min_area_rect():
    """The boxes of mmrotate's coder (OpenCV's minAreaRect per box), le90,
    without OpenCV; theta may only wrap by pi at the le90 boundary."""
    coder = MidpointOffsetCoder(
        angle_version='le90',
        target_means=[0.0] * 6,
        target_stds=[1.0, 1.0, 1.0, 1.0, 0.5, 0.5])
    generator = torch.Generator().manual_seed(2)
    corner = torch.rand(500, 2, generator=generator) * 500
    anchors = torch.cat(
        [corner, corner + torch.rand(500, 2, generator=generator) * 90 + 4], 1)
    deltas = torch.randn(500, 6, generator=generator) * 0.4
    deltas[:100, 4:] = 2.0  # offsets clamped at 0.5: axis-aligned boxes
    stock = coder.decode(anchors, deltas).tensor
    ours = midpoint_offset_decode(coder, anchors, deltas)
    assert (stock[:, :4] - ours[:, :4]).abs().max() < 1e-3
    angle_gap = (stock[:, 4] - ours[:, 4]).abs()
    wrapped = (angle_gap - np.pi).abs() < 1e-4
    assert (angle_gap[~wrapped]).max() < 1e-4
    assert (stock[wrapped, 4].abs() - np.pi / 2).abs().max() < 1e-4 \
        if wrapped.any() else True


@pytest.mark.parametrize('top_k,routing', [(1, 'grid'), (2, 'grid'),
                                           (3, 'grid'), (2, 'image')])
def test_grid_moe_exported_gathered_equals_sparse(monkeypatch, top_k, routing):
    """In an ONNX export (or forced) each expert gathers its tokens by a
    mask: the layer's outputs are unchanged (ConvNeXt MLP experts, also
    after pruning experts)."""
    init_default_scope('mmrotate')
    torch.manual_seed(3)
    layer = MODELS.build(
        dict(
            type='GridMoE',
            in_channels=16,
            expert_cfg=dict(type='ConvNeXtMLP', in_channels=16),
            num_experts=6,
            top_k=top_k,
            routing=routing)).eval()
    x = torch.randn(2, 5, 7, 16)
    gathered_calls = mock.Mock(wraps=grid_moe.run_experts_gathered)
    monkeypatch.setattr(grid_moe, 'run_experts_gathered', gathered_calls)
    with torch.no_grad():
        sparse = layer(x)
        with forced_expert_backend('gather'):
            gathered = layer(x)
        keep_experts(layer, [5, 0, 2, 3])
        pruned_sparse = layer(x)
        monkeypatch.setattr(torch.onnx, 'is_in_onnx_export', lambda: True)
        pruned_gathered = layer(x)
    assert gathered_calls.call_count == 2
    assert (sparse - gathered).abs().max() < 1e-5
    assert (pruned_sparse - pruned_gathered).abs().max() < 1e-5


def detections(boxes, scores, labels):
    return SimpleNamespace(
        boxes=np.array(boxes, np.float32),
        scores=np.array(scores, np.float32),
        labels=np.array(labels, np.int64))


def test_pairing_of_detections():
    rotated = detections([[50, 50, 40, 10, 0.3], [80, 20, 30, 30, 1.5]],
                         [0.9, 0.8], [0, 1])
    # The same, listed in the other order, one as theta + pi.
    same = detections([[80, 20, 30, 30, 1.5], [50, 50, 40, 10, 0.3 - np.pi]],
                      [0.8, 0.9], [1, 0])
    assert compare_detections(rotated, same).ok
    moved = detections([[50.02, 50, 40, 10, 0.3], [80, 20, 30, 30, 1.5]],
                       [0.9, 0.8], [0, 1])
    assert not compare_detections(rotated, moved).ok
    assert compare_detections(rotated, moved, box_tol=0.05).ok
    relabelled = detections(rotated.boxes, rotated.scores, [0, 2])
    assert compare_detections(rotated, relabelled).unpaired == [1]
    fewer = detections(rotated.boxes[:1], rotated.scores[:1], [0])
    assert not compare_detections(rotated, fewer).ok


def test_favour_breaks_only_exact_ties():
    """Candidates matching the reference go first among equal scores; the
    order of different scores is kept."""
    candidates = detections(
        [[0, 0, 10, 10], [1, 1, 11, 11], [20, 20, 30, 30], [40, 40, 50, 50]],
        [0.5, 0.5, 0.7, 0.6], [0, 0, 0, 1])
    reference = detections([[1, 1, 11, 11], [20, 20, 30, 30]], [0.5, 0.7],
                           [0, 0])
    order = favour(candidates, reference)
    assert order.tolist() == [1, 2, 0, 3]
    # A stable sort by score now visits the reference's tied box (1) before
    # the other (0), and the rest by score.
    visits = order[np.argsort(-candidates.scores[order], kind='stable')]
    assert visits.tolist() == [2, 3, 1, 0]


@pytest.mark.parametrize('config,task', [
    ('sm3det-frcnn-orcnn_convnext-mini_fpn_600it_soi-det-mini.py', 'sar'),
    ('sm3det-retinanet-s2anet_convnext-mini_fpn_600it_soi-det-mini.py',
     'dota'),
])
def test_heads_without_an_export_are_refused(config, task):
    """Faster R-CNN (two-stage, not oriented) and S2A-Net: a message naming
    the task and the heads that export."""
    init_default_scope('mmrotate')
    cfg = Config.fromfile(osp.join(REPO_ROOT, 'configs/head_pairs', config))
    model = MODELS.build(cfg.model)
    with pytest.raises(ValueError, match=f"task '{task}'.*covers GFL"):
        TaskGraph(model, task)
