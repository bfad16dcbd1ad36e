"""Expert usage: per-dataset token shares, distances and the tool's outputs.

A 'mini' ConvNeXtMoE gets routers set by hand so that every token of a bright
image goes to experts {0, 1} and every token of a dark one to {2, 3}; the two
kinds of images play two datasets, so their shares and distances are known.
The tool (tools/analysis_tools/expert_usage.py) runs as a user runs it, on
the SM3Det-mini config and a fresh SOI-Det-mini.
"""
import csv
import json
import os.path as osp
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.nn as nn
from mmdet.models.data_preprocessors import DetDataPreprocessor
from mmdet.structures import DetDataSample
from mmengine.registry import init_default_scope

from sm3det.datasets.preparation import generate_soi_det_mini
from sm3det.engine.hooks import ExpertUsageHook
from sm3det.evaluation.expert_usage import (ExpertUsage, js_distance,
                                            layer_in_stage, route_images,
                                            stage_of, valid_token_extent)
from sm3det.models.backbones.convnext_moe import ConvNeXtMoE
from sm3det.models.layers import moe_layers
from repository import REPO_ROOT, run_script

TOOL = 'tools/analysis_tools/expert_usage.py'
MINI_CONFIG = osp.join(REPO_ROOT, 'configs', 'sm3det',
                       'sm3det_convnext-mini_fpn_600it_soi-det-mini.py')
NUM_EXPERTS = 8
BRIGHT, DARK = 'bright', 'dark'
PARTS = ('sar', 'dota', 'dronevehicle')


def images(level: int, count: int, height: int, width: int, seed: int):
    """``count`` uint8 ``(3, h, w)`` images around a grey ``level``."""
    generator = torch.Generator().manual_seed(seed)
    noise = torch.randint(
        -20, 21, (count, 3, height, width), generator=generator)
    return list((level + noise).clamp(0, 255).to(torch.uint8))


def batch(inputs, dataset):
    samples = [
        DetDataSample(
            metainfo=dict(
                img_shape=tuple(image.shape[1:]), dataset_name=dataset))
        for image in inputs
    ]
    return dict(inputs=inputs, data_samples=samples)


def set_router(router, token_direction, threshold):
    """Route tokens with ``token_direction . x > threshold`` to experts
    {0, 1}, the others to {2, 3}: the projection keeps only that signed
    margin, and the expert embeddings point along it (+ for 0, 1; - for
    2, 3; orthogonal for the rest)."""
    unit = token_direction / token_direction.norm()
    with torch.no_grad():
        router.proj.weight.zero_()
        router.proj.bias.zero_()
        router.proj.weight[0] = unit
        router.proj.bias[0] = -threshold * 1.
        router.expert_embeddings.zero_()
        router.expert_embeddings[0, :2] = 1.
        router.expert_embeddings[0, 2:4] = -1.
        router.expert_embeddings[1, 4:] = 1.


@pytest.fixture(scope='module')
def bright_dark_model():
    """Backbone + data preprocessor whose routers split bright from dark
    tokens, calibrated layer by layer on unpadded images."""
    init_default_scope('mmrotate')
    torch.manual_seed(0)
    model = nn.Module()
    model.backbone = ConvNeXtMoE(
        arch='mini',
        drop_path_rate=0.,
        moe_cfg=dict(num_experts=NUM_EXPERTS, top_k=2))
    model.backbone.init_weights()
    model.data_preprocessor = DetDataPreprocessor(
        mean=[128.] * 3, std=[50.] * 3, bgr_to_rgb=True, pad_size_divisor=32)
    model.eval()
    calibration = {
        kind:
        model.data_preprocessor(
            batch(images(level, 2, 64, 96, seed), kind), False)['inputs']
        for kind, level, seed in ((BRIGHT, 210, 1), (DARK, 45, 2))
    }
    captured = {}
    for layer in moe_layers(model.backbone).values():
        hook = layer.router.register_forward_hook(
            lambda module, args, out: captured.update(tokens=args[0]))
        means = {}
        for kind, inputs in calibration.items():
            with torch.no_grad():
                model.backbone(inputs)
            means[kind] = captured['tokens'].mean(dim=0)
        hook.remove()
        direction = means[BRIGHT] - means[DARK]
        midpoint = (means[BRIGHT] + means[DARK]) / 2
        set_router(layer.router, direction,
                   float(midpoint @ direction / direction.norm()))
    return model


def bright_dark_batches():
    """Two bright and three dark 64x80 images, which the preprocessor pads
    to 64x96."""
    return [
        batch(images(210, 2, 64, 80, seed=3), BRIGHT),
        batch(images(45, 1, 64, 80, seed=4), DARK),
        batch(images(45, 2, 64, 80, seed=5), DARK),
    ]


@pytest.fixture(scope='module')
def bright_dark_usage(bright_dark_model):
    """Usage over :func:`bright_dark_batches`, plus the routed maps of
    every image."""
    loader = bright_dark_batches()
    layers = moe_layers(bright_dark_model.backbone)
    usage = ExpertUsage(list(layers), NUM_EXPERTS)
    routed = []
    for meta, image, maps in route_images(bright_dark_model, loader):
        usage.add(meta['dataset_name'], maps)
        routed.append((meta, image, maps))
    return usage, routed


LABELS = [
    'stages.1.0.mlp', 'stages.2.0.mlp', 'stages.2.2.mlp', 'stages.3.0.mlp'
]


@pytest.fixture(scope='module')
def mini_run(tmp_path_factory):
    """The tool end to end: SM3Det-mini config, a saved (untrained) model,
    two test images per part of a freshly drawn SOI-Det-mini; the expert
    maps of one image per part, at one layer."""
    from mmengine.config import Config
    from mmengine.runner import save_checkpoint
    from mmrotate.registry import MODELS

    root = tmp_path_factory.mktemp('expert_usage')
    data_root = root / 'data'
    generate_soi_det_mini(
        str(data_root), num_train=1, num_test=2, size=256, seed=0)
    torch.manual_seed(0)
    model = MODELS.build(Config.fromfile(MINI_CONFIG).model)
    checkpoint = str(root / 'model.pth')
    save_checkpoint(dict(state_dict=model.state_dict()), checkpoint)
    data_options = ['--cfg-options'] + [
        f'test_dataloader.dataset.datasets.{i}.data_root={data_root}/{part}/'
        for i, part in enumerate(PARTS)
    ]
    out_dir = root / 'out'
    printed = run_script(TOOL, MINI_CONFIG, checkpoint, '--num-images', 2,
                         '--maps', 1, '--map-layers', 'stages.2.0.mlp',
                         '--out-dir', out_dir, *data_options).stdout
    return SimpleNamespace(
        checkpoint=checkpoint,
        data_options=data_options,
        out_dir=out_dir,
        printed=printed)


def test_moe_layer_labels_are_module_names(bright_dark_model, mini_run):
    labels = list(moe_layers(bright_dark_model.backbone))
    # mini: depths 1/1/3/1, MoE in the even blocks of code stages 1-3.
    assert labels == LABELS
    # The tool names the layers so too, and refuses others.
    failed = run_script(
        TOOL,
        MINI_CONFIG,
        mini_run.checkpoint,
        '--map-layers',
        'stages.9.0.mlp',
        '--out-dir',
        mini_run.out_dir / 'unused',
        *mini_run.data_options,
        check=False)
    assert failed.returncode != 0
    assert (f"--map-layers ['stages.9.0.mlp']: no such MoE layer; the model "
            f'has {LABELS}') in failed.stderr


def test_stages_group_layers_of_any_backbone():
    """A stage is the name before the block index, whatever the backbone
    (ConvNeXt's stages.i.j, VAN/LSKNet's blocki.j.mlp.fc1, mmdet PVT-v2's
    layers.i.1.j.ffn)."""
    assert stage_of('stages.2.4.mlp') == 'stages.2'
    assert layer_in_stage('stages.2.4.mlp') == '4.mlp'
    assert stage_of('block1.0.mlp.fc1') == 'block1'
    assert layer_in_stage('block1.0.mlp.fc2') == '0.mlp.fc2'
    assert stage_of('layers.3.1.0.ffn.moe') == 'layers.3.1'
    assert stage_of('moe') == 'moe' == layer_in_stage('moe')
    usage = ExpertUsage(
        ['block1.0.mlp.fc1', 'block1.0.mlp.fc2', 'block2.1.mlp.fc1'], 4)
    assert usage.stages == {'block1': [0, 1], 'block2': [2]}


def test_valid_token_extent_drops_batch_padding():
    # A 100x60 image in a 128x64 batch: stride-8 map 16x8 -> 13x8.
    assert valid_token_extent((100, 60), (128, 64), (16, 8)) == (13, 8)
    assert valid_token_extent((128, 64), (128, 64), (4, 2)) == (4, 2)


def test_js_distance_bounds():
    p = np.array([5., 5., 0., 0.])
    assert js_distance(p, p * 3) == pytest.approx(0.)
    assert js_distance(p, p[::-1].copy()) == pytest.approx(1.)
    half = js_distance(p, np.array([5., 0., 5., 0.]))
    assert 0. < half < 1.


def test_shares_follow_the_routers(bright_dark_model, bright_dark_usage):
    usage, routed = bright_dark_usage
    assert usage.num_images == {BRIGHT: 2, DARK: 3}
    expected = {
        BRIGHT: [50., 50., 0., 0., 0., 0., 0., 0.],
        DARK: [0., 0., 50., 50., 0., 0., 0., 0.],
    }
    for name, shares in usage.layer_shares().items():
        np.testing.assert_allclose(
            100 * shares, np.tile(expected[name], (4, 1)), atol=1e-9)
    stage_shares = usage.stage_shares()
    assert list(stage_shares[DARK]) == ['stages.1', 'stages.2', 'stages.3']
    np.testing.assert_allclose(100 * stage_shares[DARK]['stages.2'],
                               expected[DARK])
    for distances in usage.stage_distances().values():
        assert distances[(BRIGHT, DARK)] == pytest.approx(1.)

    # Only positions over the 64x80 image count, not the 16 padded columns.
    meta, image, maps = routed[0]
    assert meta['batch_input_shape'] == (64, 96)
    assert image.shape == (64, 80, 3) and image.dtype == np.uint8
    assert [tuple(m.shape) for m in maps] == [(8, 10, 2), (4, 5, 2), (4, 5, 2),
                                              (2, 3, 2)]
    tokens_per_layer = usage.counts[BRIGHT].sum(axis=1)
    np.testing.assert_array_equal(
        tokens_per_layer, [2 * 80 * 2, 2 * 20 * 2, 2 * 20 * 2, 2 * 6 * 2])
    # Recording is switched off again afterwards.
    layers = moe_layers(bright_dark_model.backbone).values()
    assert all(not layer.record_expert_map for layer in layers)


def test_command_line_on_mini_config(mini_run):
    out_dir = mini_run.out_dir
    for name in ('expert_usage.md', 'expert_usage.csv', 'expert_usage.json',
                 'expert_usage.png'):
        assert (out_dir / name).stat().st_size > 0
    with open(out_dir / 'expert_usage.json') as f:
        raw = json.load(f)
    assert raw['num_images'] == {'sar': 2, 'dota': 2, 'dronevehicle': 2}
    assert raw['layers'] == LABELS
    assert len(list((out_dir / 'maps').glob('*.png'))) == 3
    assert 'stages.3: sar-dota' in mini_run.printed


def test_tables_plot_and_maps_are_written(mini_run):
    """The tables hold the shares of the raw counts, the distances, and the
    figures are PNGs."""
    out_dir = mini_run.out_dir
    with open(out_dir / 'expert_usage.json') as f:
        raw = json.load(f)
    with open(out_dir / 'expert_usage.csv') as f:
        rows = list(csv.DictReader(f))
    # Per dataset: 3 stage rows + 4 layer rows.
    assert len(rows) == len(PARTS) * (3 + 4)
    assert all(
        sum(float(r[f'expert_{n}'])
            for n in range(NUM_EXPERTS)) == pytest.approx(100., abs=0.05)
        for r in rows)
    for name in PARTS:
        for index, label in enumerate(LABELS):
            row = next(
                r for r in rows
                if r['dataset'] == name and r['stage'] == stage_of(label)
                and r['layer'] == layer_in_stage(label))
            counts = np.array(raw['counts'][name][index])
            assert [float(row[f'expert_{n}']) for n in range(NUM_EXPERTS)] == [
                round(100 * float(s), 2) for s in counts / counts.sum()
            ]
    markdown = (out_dir / 'expert_usage.md').read_text()
    distance = raw['js_distance']['stages.3']['sar|dota']
    assert f'| stages.3 | {distance:.3f} |' in markdown
    assert 'sar vs dota' in markdown

    for png in [out_dir / 'expert_usage.png', *(out_dir / 'maps').iterdir()]:
        assert png.read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'


def test_hook_publishes_distances_of_a_validation_epoch(bright_dark_model):
    from mmengine.logging import MessageHub
    runner = SimpleNamespace(
        model=bright_dark_model,
        message_hub=MessageHub.get_instance('test_expert_usage_hook'))
    hook = ExpertUsageHook()
    hook.before_val_epoch(runner)
    for index, data in enumerate(bright_dark_batches()):
        # What ValLoop does: the model's val_step, then the hook.
        with torch.no_grad():
            data = bright_dark_model.data_preprocessor(data, False)
            bright_dark_model.backbone(data['inputs'])
        hook.after_val_iter(runner, index, None, data['data_samples'])
    metrics = {}
    hook.after_val_epoch(runner, metrics)

    assert sorted(metrics) == [
        f'expert_usage/{stage}/bright-dark'
        for stage in ('stages.1', 'stages.2', 'stages.3')
    ]
    assert all(v == pytest.approx(1.) for v in metrics.values())
    logged = runner.message_hub.get_scalar('val/expert_usage/stages.2/'
                                           'bright-dark').current()
    assert logged == pytest.approx(1.)
    layers = moe_layers(bright_dark_model.backbone).values()
    assert all(not layer.record_expert_map for layer in layers)
