"""VAN, LSKNet and PVT-v2 MoE backbones: configs, checkpoints, forward;
the base that every MoE backbone shares.

Each backbone loads a dense checkpoint in the official and the OpenMMLab key
formats with every expert set to the pretrained 1x1 conv, so that, with the
router in eval mode and any top-k, it computes what the dense one computes.
"""
import inspect
import os.path as osp
import re

import pytest
import torch
from mmengine.config import Config
from mmrotate.registry import MODELS

from sm3det.models.backbones import MoEBackbone, moe_backbone
from sm3det.models.layers import GridMoE, moe_balance_loss, moe_layers
from repository import REPO_ROOT

MINI = dict(arch='mini')
MOE_4_TOP2 = dict(num_experts=4, top_k=2)

# config -> (all parameters, backbone parameters, MoE layers, experts each).
# Backbones without MoE match the published ImageNet models less their
# classifier: VAN-b0/b1/b2 3.85M / 13.35M / 26.07M, LSKNet-T/S 3.99M /
# 13.84M, PVT-v2-b0/b1/b2 3.41M / 13.50M / 24.85M.
CONFIGS = {
    'sm3det_van-t_fpn_33k_soi-det': (51_499_349, 13_918_396, 12, 8),
    'sm3det_van-s_fpn_33k_soi-det': (64_794_081, 27_082_056, 8, 4),
    'sm3det_van-b_fpn_33k_soi-det': (96_943_533, 59_231_508, 20, 4),
    'sm3det_lsknet-t_fpn_33k_soi-det': (46_515_171, 8_934_218, 12, 4),
    'sm3det_lsknet-s_fpn_33k_soi-det': (65_286_173, 27_574_148, 8, 4),
    'sm3det_lsknet-b_fpn_33k_soi-det': (97_991_979, 60_279_954, 20, 4),
    'sm3det_pvtv2-t_fpn_33k_soi-det': (44_002_895, 6_421_942, 6, 4),
    'sm3det_pvtv2-s_fpn_33k_soi-det': (62_091_519, 24_379_494, 6, 4),
    'sm3det_pvtv2-b_fpn_33k_soi-det': (87_178_631, 49_466_606, 14, 4),
    'sm3det_van-mini_fpn_600it_soi-det-mini': (6_674_239, 4_408_486, 6, 4),
    'sm3det_lsknet-mini_fpn_600it_soi-det-mini': (6_727_549, 4_461_796, 6, 4),
    'sm3det_pvtv2-mini_fpn_600it_soi-det-mini': (7_646_671, 5_378_870, 6, 4),
}


def num_params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


@pytest.mark.parametrize('name', sorted(CONFIGS))
def test_config_parameters_and_placement(name):
    cfg = Config.fromfile(
        osp.join(REPO_ROOT, 'configs', 'sm3det', name + '.py'))
    with torch.device('meta'):
        model = MODELS.build(cfg.model)
    params, backbone_params, num_layers, num_experts = CONFIGS[name]
    assert num_params(model) == params
    assert num_params(model.backbone) == backbone_params
    layers = moe_layers(model.backbone)
    assert len(layers) == num_layers
    assert {layer.num_experts for layer in layers.values()} == {num_experts}
    assert {layer.top_k for layer in layers.values()} == {2}
    # fc1 and fc2 of the even blocks of stages 2-4 (0-based 1-3).
    depths = getattr(model.backbone, 'depths', None) or \
        model.backbone.num_layers
    expected = {(stage, block)
                for stage in (1, 2, 3)
                for block in range(0, depths[stage], 2)}
    placed = [stage_and_block(layer_name) for layer_name in layers]
    assert sorted(placed) == sorted(2 * list(expected))


def stage_and_block(layer_name: str) -> tuple:
    """(0-based stage, block) of a VAN / LSKNet or PVT-v2 MoE layer name."""
    van = re.fullmatch(r'block(\d)\.(\d+)\.mlp\.fc[12]', layer_name)
    if van:
        return int(van[1]) - 1, int(van[2])
    pvt = re.fullmatch(r'layers\.(\d)\.1\.(\d+)\.ffn\.layers\.[04]',
                       layer_name)
    assert pvt, layer_name
    return int(pvt[1]), int(pvt[2])


# ---------------------------------------------------------------- formats
def van_official(state_dict: dict) -> dict:
    """Dense VANMoE / LSKNetMoE names -> the official checkpoint's."""
    keys = {
        re.sub(r'\.mlp\.dwconv\.', '.mlp.dwconv.dwconv.', k): v
        for k, v in state_dict.items()
    }
    return dict(keys, **{'head.weight': torch.zeros(10, 256)})


def van_mmpretrain(state_dict: dict) -> dict:
    """Dense VANMoE names -> mmpretrain's VAN checkpoint (a classifier)."""
    renames = [(r'^block(\d)\.', r'blocks\1.'),
               (r'^(patch_embed\d)\.proj\.', r'\1.projection.'),
               (r'\.conv0\.', '.DW_conv.'),
               (r'\.conv_spatial\.', '.DW_D_conv.')]
    converted = {}
    for key, value in state_dict.items():
        for pattern, replacement in renames:
            key = re.sub(pattern, replacement, key)
        converted['backbone.' + key] = value
    converted['head.fc.weight'] = torch.zeros(10, 256)
    return dict(state_dict=converted, meta=dict(mmpretrain_version='1.0'))


def detector_checkpoint(state_dict: dict) -> dict:
    """A detector checkpoint: the backbone under ``backbone.``, a neck."""
    converted = {'backbone.' + k: v for k, v in state_dict.items()}
    converted['neck.lateral_convs.0.conv.weight'] = torch.zeros(8, 8, 1, 1)
    return dict(state_dict=converted)


def pvt_official(state_dict: dict) -> dict:
    """mmdet's PVT-v2 names -> whai362/PVT's (mmdet's pvt_convert undone:
    q / kv split, linear fc weights)."""
    official = {'head.weight': torch.zeros(10, 256)}
    ffn_names = {'0': 'mlp.fc1.', '1': 'mlp.dwconv.dwconv.', '4': 'mlp.fc2.'}
    for key, value in state_dict.items():
        stage, part, rest = re.match(r'layers\.(\d)\.(\d)\.(.*)$',
                                     key).groups()
        stage = int(stage) + 1
        if part == '0':
            official[f'patch_embed{stage}.' +
                     rest.replace('projection.', 'proj.')] = value
            continue
        if part == '2':
            official[f'norm{stage}.{rest}'] = value
            continue
        block, rest = rest.split('.', 1)
        prefix = f'block{stage}.{block}.'
        if rest.startswith('attn.attn.in_proj_'):
            suffix = rest[len('attn.attn.in_proj_'):]
            channels = value.shape[0] // 3
            official[prefix + 'attn.q.' + suffix] = value[:channels]
            official[prefix + 'attn.kv.' + suffix] = value[channels:]
        elif rest.startswith('attn.attn.out_proj.'):
            official[prefix + 'attn.proj.' +
                     rest[len('attn.attn.out_proj.'):]] = value
        elif rest.startswith('ffn.layers.'):
            index, suffix = rest[len('ffn.layers.'):].split('.', 1)
            if index in ('0', '4') and suffix == 'weight':
                value = value.flatten(1)
            official[prefix + ffn_names[index] + suffix] = value
        else:  # norm1, norm2, attn.sr, attn.norm
            official[prefix + rest] = value
    return official


def random_dense(backbone_type: str) -> torch.nn.Module:
    """A dense mini backbone with random weights and BN statistics of a
    size that makes every branch count (layer scales ~0.3)."""
    dense = MODELS.build(dict(type=backbone_type, moe_blocks=[], **MINI))
    dense.init_weights()
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, tensor in dense.state_dict().items():
            if not tensor.is_floating_point():
                continue
            noise = torch.randn(tensor.shape, generator=generator)
            if 'running_var' in name:
                tensor.copy_(0.5 + noise.abs())
            elif 'layer_scale' in name:
                tensor.copy_(0.3 + 0.1 * noise)
            else:
                tensor.add_(0.05 * noise)
    return dense.eval()


@pytest.mark.parametrize('backbone_type,to_format,top_k', [
    ('VANMoE', van_official, 2),
    ('VANMoE', van_mmpretrain, 3),
    ('LSKNetMoE', van_official, 1),
    ('LSKNetMoE', detector_checkpoint, 2),
    ('PVTv2MoE', pvt_official, 2),
    ('PVTv2MoE', detector_checkpoint, 4),
])
def test_equal_to_dense_at_init(tmp_path, backbone_type, to_format, top_k):
    dense = random_dense(backbone_type)
    path = str(tmp_path / 'dense.pth')
    torch.save(to_format(dense.state_dict()), path)
    moe = MODELS.build(
        dict(
            type=backbone_type,
            moe_cfg=dict(num_experts=4, top_k=top_k),
            init_cfg=dict(type='Pretrained', checkpoint=path),
            **MINI))
    moe.init_weights()
    moe.eval()
    layers = moe_layers(moe)
    assert len(layers) == 6
    images = torch.randn(
        2, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected, actual = dense(images), moe(images)
    assert len(actual) == 4
    for want, got in zip(expected, actual):
        assert got.shape == want.shape
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize(
    'backbone_type',
    ['ConvNeXtMoE', 'ConvNeXtDA', 'VANMoE', 'LSKNetMoE', 'PVTv2MoE'])
def test_one_base_for_every_moe_backbone(backbone_type):
    """Every MoE backbone is an MoEBackbone (placement, MoE layers,
    checkpoint loading), and the base imports no backbone."""
    assert issubclass(MODELS.get(backbone_type), MoEBackbone)
    source = inspect.getsource(moe_backbone)
    assert not re.search(r'^from \.(?!\.)', source, re.MULTILINE)


def test_checkpoint_errors(tmp_path):
    with pytest.raises(ValueError, match='init_cfg'):
        MODELS.build(
            dict(type='VANMoE', init_cfg=dict(type='Kaiming'), **MINI))
    path = str(tmp_path / 'other.pth')
    torch.save({'stem.weight': torch.zeros(3)}, path)
    moe = MODELS.build(
        dict(
            type='LSKNetMoE',
            init_cfg=dict(type='Pretrained', checkpoint=path),
            **MINI))
    with pytest.raises(ValueError, match='other.pth'):
        moe.init_weights()
    with pytest.raises(ValueError, match=r'moe_blocks\[3\]'):
        MODELS.build(
            dict(type='PVTv2MoE', moe_blocks=[[], [], [], [4]], **MINI))


@pytest.mark.parametrize('backbone_type,channels', [
    ('VANMoE', (32, 64, 128, 256)),
    ('LSKNetMoE', (32, 64, 128, 256)),
    ('PVTv2MoE', (32, 64, 160, 256)),
])
def test_training_forward(backbone_type, channels):
    """Strides 4-32, a balance loss from every MoE layer, gradients into
    the experts and the routers."""
    torch.manual_seed(0)
    backbone = MODELS.build(
        dict(type=backbone_type, moe_cfg=MOE_4_TOP2, **MINI))
    backbone.init_weights()
    backbone.train()
    outs = backbone(torch.randn(2, 3, 64, 96))
    assert [tuple(o.shape) for o in outs] == [
        (2, c, 64 // s, 96 // s) for c, s in zip(channels, (4, 8, 16, 32))
    ]
    balance = moe_balance_loss(backbone)
    assert balance.dim() == 0 and torch.isfinite(balance)
    (sum(o.mean() for o in outs) + balance).backward()
    layer = next(iter(moe_layers(backbone).values()))
    assert isinstance(layer, GridMoE)
    grads = [
        p.grad for n, p in layer.named_parameters()
        if n.startswith(('experts', 'router'))
    ]
    assert grads and all(g is not None for g in grads)
    assert any(g.abs().sum() > 0 for g in grads)


@pytest.mark.parametrize('family', ['van', 'lsknet', 'pvtv2'])
def test_mini_config_pyramid(family):
    """The mini detector's FPN takes this backbone's channels: P2-P7 of the
    mini width, and SM3Det's balance loss term from the MoE layers."""
    cfg = Config.fromfile(
        osp.join(REPO_ROOT, 'configs', 'sm3det',
                 f'sm3det_{family}-mini_fpn_600it_soi-det-mini.py'))
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    model.train()
    pyramid = model.extract_feat(torch.randn(2, 3, 128, 128))
    width = cfg.model.neck.out_channels
    expected = [(2, width, 128 // s, 128 // s)
                for s in (4, 8, 16, 32, 64, 128)]
    assert [tuple(p.shape) for p in pyramid] == expected
    assert torch.isfinite(moe_balance_loss(model))
