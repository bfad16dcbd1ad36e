"""Every config in configs/ (but _base_) loads and builds its model.

The models are built on PyTorch's meta device: shapes and parameter counts
are real, no weights are allocated, so even ConvNeXt-L builds in a moment.
Where a config is one of the paper's, its parameter count must match the
published one (configs/metafile.yml) within 1%; where configs/README.md
lists a count of its own (the head pairs), the count must be that one.
"""
import ast
import glob
import os.path as osp
import re

import pytest
import torch
from mmengine.config import Config
from mmrotate.registry import MODELS

from sm3det.models.layers import moe_layers
from sm3det.paper import PAPER_GROUPS, PAPER_MODELS, config_name, group_name
from repository import REPO_ROOT

CONFIGS = sorted(
    osp.relpath(path, REPO_ROOT) for path in glob.glob(
        osp.join(REPO_ROOT, 'configs', '**', '*.py'), recursive=True)
    if '_base_' not in osp.relpath(path, REPO_ROOT).split(osp.sep))


def readme_counts() -> dict:
    """Parameters (M, as printed) of configs/README.md's head-pair table:
    config name -> '206.04'."""
    with open(osp.join(REPO_ROOT, 'configs', 'README.md')) as f:
        rows = re.findall(
            r'\(`(\w+-\w+)`\) \| ([\d.]+) \| [\d.-]+ \| ([\d.]+) \|', f.read())
    return {
        f'{kind}-{pair}_convnext-t_fpn_33k_soi-det': count
        for pair, sm3det_count, joint_count in rows
        for kind, count in (('sm3det', sm3det_count), ('joint', joint_count))
    }


README_COUNTS = readme_counts()


def build_on_meta(model_cfg) -> torch.nn.Module:
    with torch.device('meta'):
        return MODELS.build(model_cfg)


def num_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def test_configs_found():
    assert len(CONFIGS) > 40
    assert 'configs/sm3det/sm3det_convnext-t_fpn_33k_soi-det.py' in CONFIGS
    names = {config_name(path) for path in CONFIGS}
    assert len(README_COUNTS) == 14 and set(README_COUNTS) <= names


@pytest.mark.parametrize('path', CONFIGS)
def test_config_builds(path):
    cfg = Config.fromfile(osp.join(REPO_ROOT, path))
    model = build_on_meta(cfg.model)
    paper = PAPER_MODELS.get(config_name(path))
    if paper is not None and paper.params is not None:
        assert num_params(model) / 1e6 == pytest.approx(paper.params, rel=0.01)
    counted = README_COUNTS.get(config_name(path))
    if counted is not None:
        assert f'{num_params(model) / 1e6:.2f}' == counted


def test_every_paper_config_exists():
    names = {config_name(path) for path in CONFIGS}
    assert set(PAPER_MODELS) <= names
    for members in PAPER_GROUPS:
        assert set(members) <= names


@pytest.mark.parametrize('members', list(PAPER_GROUPS), ids=group_name)
def test_separate_models_add_up_to_the_paper(members):
    total = sum(
        num_params(
            build_on_meta(
                Config.fromfile(
                    osp.join(REPO_ROOT, 'configs', 'single', name +
                             '.py')).model)) for name in members)
    # 1.5%: the paper's ConvNeXt-B total (309M) is 1.1% above what the
    # same three models count (305.7M); T, S and L agree within 0.6%.
    assert total / 1e6 == pytest.approx(
        PAPER_GROUPS[members].params, rel=0.015)


@pytest.mark.parametrize('size,arch,channels', [
    ('s', 'small', [96, 192, 384, 768]),
    ('b', 'base', [128, 256, 512, 1024]),
    ('l', 'large', [192, 384, 768, 1536]),
])
def test_larger_backbones(size, arch, channels):
    """S/B/L: backbone, FPN inputs, checkpoint, and the MoE placement rule
    (even blocks of stages 2-4: blocks 0..26 of the 27 in stage 3)."""
    cfg = Config.fromfile(
        osp.join(REPO_ROOT, 'configs/sm3det',
                 f'sm3det_convnext-{size}_fpn_33k_soi-det.py'))
    assert cfg.model.neck.in_channels == channels
    assert f'convnext-{arch}_' in cfg.model.backbone.init_cfg.checkpoint
    backbone = build_on_meta(cfg.model.backbone)
    assert backbone.depths == (3, 3, 27, 3)
    assert backbone.channels == tuple(channels)
    assert backbone.moe_blocks == [[], [0, 2], list(range(0, 27, 2)), [0, 2]]
    assert len(moe_layers(backbone)) == 18
    for name in ('gfl_convnext-{}_fpn_33k_sardet',
                 'oriented-rcnn_convnext-{}_fpn_33k_dota'):
        single = Config.fromfile(
            osp.join(REPO_ROOT, 'configs/single',
                     name.format(size) + '.py'))
        assert single.model.backbone.arch == arch
        assert single.model.backbone.moe_blocks == []  # dense
        assert single.model.neck.in_channels == channels


def test_moe_ablations_change_only_the_moe():
    base = Config.fromfile(
        osp.join(REPO_ROOT,
                 'configs/sm3det/sm3det_convnext-t_fpn_33k_soi-det.py'))
    expected = {
        'sm3det-moe-stages3-4-2experts': ([[], [], [0, 2, 4, 6, 8],
                                           [0, 2]], 2, 2, 'grid'),
        'sm3det-moe-stages3-4-top3': ([[], [], [0, 2, 4, 6, 8],
                                       [0, 2]], 8, 3, 'grid'),
        'sm3det-moe-stage4': ([[], [], [], [0, 2]], 8, 2, 'grid'),
        'sm3det-moe-all-blocks': ([[0, 1, 2], [0, 1, 2],
                                   list(range(9)), [0, 1, 2]], 8, 2, 'grid'),
        'sm3det-moe-image-routing': ([[], [0, 2], [0, 2, 4, 6, 8],
                                      [0, 2]], 8, 2, 'image'),
    }
    for prefix, (blocks, experts, top_k, routing) in expected.items():
        cfg = Config.fromfile(
            osp.join(
                REPO_ROOT, f'configs/ablations/{prefix}_convnext-t_fpn_33k_'
                'soi-det.py'))
        backbone = build_on_meta(cfg.model.backbone)
        assert backbone.moe_blocks == blocks
        layers = list(moe_layers(backbone).values())
        assert {(m.num_experts, m.top_k, m.routing)
                for m in layers} == {(experts, top_k, routing)}
        # Everything else is SM3Det's: heads, data, schedule, DSO.
        for key in ('train_dataloader', 'param_scheduler', 'optim_wrapper',
                    'custom_hooks'):
            assert cfg[key] == base[key]
        assert cfg.model.tasks == base.model.tasks


def base_chain(path: str) -> set:
    """Every file a config inherits from, directly or not (repo-relative)."""
    chain, todo = set(), [osp.join(REPO_ROOT, path)]
    while todo:
        current = todo.pop()
        with open(current) as f:
            tree = ast.parse(f.read())
        for node in tree.body:
            if isinstance(node, ast.Assign) and any(
                    getattr(t, 'id', None) == '_base_' for t in node.targets):
                bases = ast.literal_eval(node.value)
                for base in [bases] if isinstance(bases, str) else bases:
                    base = osp.normpath(osp.join(osp.dirname(current), base))
                    chain.add(osp.relpath(base, REPO_ROOT))
                    todo.append(base)
    return chain


METHOD_PARTS = ('configs/sm3det/', 'configs/_base_/models/sm3det_',
                'configs/_base_/dso.py')

BASELINES = [
    c for c in CONFIGS
    if c.split(osp.sep)[1] in ('baselines', 'joint', 'single')
]


@pytest.mark.parametrize('path', BASELINES)
def test_baselines_do_not_inherit_the_method(path):
    """Baselines share the trunk and heads with SM3Det (_base_/models/),
    but never build on SM3Det's configs to take MoE or DSO out again."""
    chain = base_chain(path)
    assert 'configs/_base_/models/soi_det_heads.py' in chain
    assert not [c for c in chain if c.startswith(METHOD_PARTS)]
    cfg = Config.fromfile(osp.join(REPO_ROOT, path))
    assert cfg.model.backbone.moe_blocks == []
    assert 'DSOHook' not in str(cfg.get('custom_hooks'))
