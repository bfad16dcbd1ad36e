"""Per-sensor export (tools/model_converters/export_task.py) of a briefly
trained SM3Det-mini.

* Threshold 0, calibrated on the whole SAR test set: the export keeps every
  expert a SAR test token chooses, so ``tools/test.py``'s route (the runner's
  test loop) gives exactly the full model's SAR metrics and the inference
  API exactly its boxes, with one head and fewer parameters: fewer by
  exactly the removed experts' weights and the two other heads.
* A threshold above every share keeps top-k experts per layer.

The SAR export runs the tool (``tools/model_converters/export_task.py``) as
a user does; the other cases call :func:`sm3det.apis.task_export.export_task`,
which the tool writes out.
"""
import os.path as osp
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.runner import Runner
from mmrotate.registry import MODELS

from sm3det.apis import SM3DetInferencer
from sm3det.apis.task_export import (choose_kept_experts, count_parameters,
                                     export_task)
from sm3det.models.layers import moe_layers
from repository import run_script

TASK = 'sar'
SAR_IMAGE = 'sar/JPEGImages/test/{:06d}.jpg'


@pytest.fixture(scope='module')
def full_config(trained_mini, tmp_path_factory):
    path = str(tmp_path_factory.mktemp('export') / 'sm3det_mini.py')
    trained_mini.cfg.dump(path)
    return path


def export(full_config, checkpoint, task=TASK, threshold=0.):
    """:func:`export_task` calibrated on up to 1000 validation images."""
    return export_task(
        Config.fromfile(full_config),
        checkpoint,
        task,
        num_images=1000,
        threshold=threshold)


@pytest.fixture(scope='module')
def sar_export(full_config, trained_mini, tmp_path_factory):
    """The tool's SAR export: the files it wrote, the kept experts stored in
    the checkpoint, and what it printed."""
    out_dir = tmp_path_factory.mktemp('export_sar')
    process = run_script('tools/model_converters/export_task.py', full_config,
                         trained_mini.checkpoint, '--task', TASK,
                         '--num-images', '1000', '--out-dir', out_dir)
    stem = osp.join(out_dir, f'sm3det_mini_{TASK}')
    meta = torch.load(f'{stem}.pth', map_location='cpu')['meta']['export']
    return SimpleNamespace(
        config=f'{stem}.py',
        checkpoint=f'{stem}.pth',
        kept_experts=meta['kept_experts'],
        printed=process.stdout + process.stderr)


def test_choose_kept_experts():
    shares = dict(
        a=np.array([.5, 0., .5, 0.]),
        b=np.array([.1] * 4 + [.6]),
        c=np.array([.97, .01, .02, 0.]))
    top_k = dict(a=2, b=2, c=2)
    # Layers that keep every expert are not listed.
    assert choose_kept_experts(shares, top_k) == dict(a=[0, 2], c=[0, 1, 2])
    # Fewer than top_k above the threshold: the most used others join.
    assert choose_kept_experts(
        shares, top_k, threshold=.3) == dict(
            a=[0, 2], b=[0, 4], c=[0, 2])


def test_export_predicts_what_the_full_model_predicts(sar_export, full_config,
                                                      trained_mini, tmp_path):
    config_path, checkpoint = sar_export.config, sar_export.checkpoint
    cfg = Config.fromfile(config_path)
    assert list(cfg.model.tasks) == [TASK]
    assert list(cfg.test_evaluator.tasks) == [TASK]
    assert cfg.train_dataloader is None

    # The runner's test loop, as tools/test.py runs it.
    cfg.work_dir, cfg.load_from = str(tmp_path), checkpoint
    metrics = Runner.from_cfg(cfg).test()
    full = {k: v for k, v in trained_mini.metrics.items() if '/sar/' in k}
    assert full and {k: metrics[k] for k in full} == full
    assert not any('dota' in k for k in metrics)

    images = [
        osp.join(trained_mini.data_root, SAR_IMAGE.format(i)) for i in (0, 5)
    ]
    exported = SM3DetInferencer(config_path, checkpoint, device='cpu')
    whole = SM3DetInferencer(
        full_config, trained_mini.checkpoint, device='cpu')
    assert exported.tasks == [TASK]  # a one-task model needs no task
    got = exported(images, return_datasample=True)['predictions']
    want = whole(images, task=TASK, return_datasample=True)['predictions']
    for a, b in zip(got, want):
        assert len(b.pred_instances) > 0
        assert torch.equal(a.pred_instances.bboxes.tensor,
                           b.pred_instances.bboxes.tensor)
        assert torch.equal(a.pred_instances.scores, b.pred_instances.scores)


def test_parameters_drop_by_the_removed_experts_and_heads(
        sar_export, trained_mini):
    full = MODELS.build(trained_mini.cfg.model)
    layers = moe_layers(full.backbone)
    kept_experts = sar_export.kept_experts
    assert kept_experts, 'SAR uses every expert of every layer'
    removed = 0
    for name, kept in kept_experts.items():
        layer = layers[name]
        per_expert = sum(
            p.numel() for p in layer.experts.parameters()) // layer.num_experts
        removed += (layer.num_experts - len(kept)) * per_expert
    removed += sum(
        count_parameters(head) for name, head in full.heads.items()
        if name != TASK)
    exported = MODELS.build(Config.fromfile(sar_export.config).model)
    assert list(exported.heads) == [TASK]
    assert count_parameters(exported) == count_parameters(full) - removed
    assert (f'Parameters: {count_parameters(full) / 1e6:.3f}M -> '
            f'{count_parameters(exported) / 1e6:.3f}M') in sar_export.printed
    pruned = moe_layers(exported.backbone)
    for name, kept in kept_experts.items():
        assert pruned[name].num_experts == len(kept)


def test_high_threshold_keeps_top_k(full_config, trained_mini):
    result = export(full_config, trained_mini.checkpoint, threshold=0.99)
    layers = moe_layers(MODELS.build(trained_mini.cfg.model).backbone)
    assert {
        name: len(kept)
        for name, kept in result.kept_experts.items()
    } == {
        name: layer.top_k
        for name, layer in layers.items()
    }
    for name, kept in result.kept_experts.items():
        most_used = np.argsort(
            -result.expert_shares[name], kind='stable')[:len(kept)]
        assert kept == sorted(most_used.tolist())


def test_bad_task_and_threshold(full_config, trained_mini):
    with pytest.raises(
            ValueError,
            match=r"task 'nope': the model config has the tasks "
            r"\[.*'dronevehicle'.*\]"):
        export(full_config, trained_mini.checkpoint, task='nope')
    with pytest.raises(ValueError, match='threshold 1.5'):
        export(full_config, trained_mini.checkpoint, threshold=1.5)
