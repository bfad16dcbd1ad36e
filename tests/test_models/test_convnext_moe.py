"""ConvNeXtMoE: sizes, placement, dense equivalence, checkpoint formats."""
import re

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from mmrotate.registry import MODELS

import sm3det  # noqa: F401  (before mmrotate)
from sm3det.analysis.complexity import count_params_and_flops
from sm3det.models.backbones import (ConvNeXtMoE, convnext_moe,
                                     even_block_indices)
from sm3det.models.layers import (GridMoE, moe_balance_loss, moe_layers,
                                  record_moe_routing)

MINI_DEPTHS = (1, 1, 3, 1)


def num_params(model):
    return sum(p.numel() for p in model.parameters())


def moe_placement(model):
    return [[
        j for j, block in enumerate(stage) if isinstance(block.mlp, GridMoE)
    ] for stage in model.stages]


def random_dense_mini():
    """A dense mini ConvNeXt with all weights random and O(1), so that
    every MLP matters (layer scale is not left at 1e-6)."""
    torch.manual_seed(0)
    model = ConvNeXtMoE('mini', moe_blocks=[], drop_path_rate=0.)
    with torch.no_grad():
        for name, param in model.named_parameters():
            centre = 1. if re.search(r'norm|layer_scale', name) else 0.
            param.copy_(centre + 0.2 * torch.randn_like(param))
    return model


def to_official_keys(state_dict):
    """Our dense names -> facebookresearch/ConvNeXt classification names."""
    renames = [('.depthwise_conv.', '.dwconv.'), ('.mlp.fc1.', '.pwconv1.'),
               ('.mlp.fc2.', '.pwconv2.'), ('.layer_scale', '.gamma')]
    official = {}
    for key, value in state_dict.items():
        if re.match(r'^norm[012]\.', key):
            continue  # the classifier has a final norm only
        key = re.sub(r'^norm3\.', 'norm.', key)
        for old, new in renames:
            key = key.replace(old, new)
        official[key] = value
    official['head.weight'] = torch.randn(10, 256)
    official['head.bias'] = torch.randn(10)
    return official


def to_mmpretrain_keys(state_dict, pointwise_as_conv=False):
    """Our dense names -> mmpretrain ConvNeXt names (``backbone.`` prefix)."""
    renames = [('.depthwise_conv.', '.depthwise_conv.'),
               ('.mlp.fc1.', '.pointwise_conv1.'),
               ('.mlp.fc2.', '.pointwise_conv2.'), ('.layer_scale', '.gamma')]
    converted = {}
    for key, value in state_dict.items():
        for old, new in renames:
            key = key.replace(old, new)
        if pointwise_as_conv and 'pointwise_conv' in key and value.dim() == 2:
            value = value[:, :, None, None]
        converted['backbone.' + key] = value
    converted['head.fc.weight'] = torch.randn(10, 256)
    return converted


def official_convnext_stage_outputs(sd, x, depths=MINI_DEPTHS):
    """Independent functional ConvNeXt on an official-format state dict;
    returns each stage's output before any output norm."""

    def channel_norm(x, prefix):
        x = x.permute(0, 2, 3, 1)
        x = F.layer_norm(x, x.shape[-1:], sd[prefix + '.weight'],
                         sd[prefix + '.bias'], 1e-6)
        return x.permute(0, 3, 1, 2)

    outs = []
    for i, depth in enumerate(depths):
        if i == 0:
            x = F.conv2d(
                x,
                sd['downsample_layers.0.0.weight'],
                sd['downsample_layers.0.0.bias'],
                stride=4)
            x = channel_norm(x, 'downsample_layers.0.1')
        else:
            x = channel_norm(x, f'downsample_layers.{i}.0')
            x = F.conv2d(
                x,
                sd[f'downsample_layers.{i}.1.weight'],
                sd[f'downsample_layers.{i}.1.bias'],
                stride=2)
        for j in range(depth):
            p = f'stages.{i}.{j}.'
            y = F.conv2d(
                x,
                sd[p + 'dwconv.weight'],
                sd[p + 'dwconv.bias'],
                padding=3,
                groups=x.shape[1]).permute(0, 2, 3, 1)
            y = F.layer_norm(y, y.shape[-1:], sd[p + 'norm.weight'],
                             sd[p + 'norm.bias'], 1e-6)
            y = F.linear(y, sd[p + 'pwconv1.weight'], sd[p + 'pwconv1.bias'])
            y = F.linear(
                F.gelu(y), sd[p + 'pwconv2.weight'], sd[p + 'pwconv2.bias'])
            x = x + (y * sd[p + 'gamma']).permute(0, 3, 1, 2)
        outs.append(x)
    return outs


def test_convnext_tiny_sizes():
    with torch.device('meta'):
        dense = ConvNeXtMoE('tiny', moe_blocks=[])
        moe = ConvNeXtMoE('tiny')
    # Official ConvNeXt-T: 28.59M with its 1000-class head, 27.82M without.
    assert num_params(dense) == pytest.approx(27.82e6, rel=0.01)
    assert num_params(moe) - num_params(dense) == pytest.approx(
        112e6, rel=0.01)
    assert moe_placement(dense) == [[], [], [], []]
    assert moe_placement(moe) == [[], [0, 2], [0, 2, 4, 6, 8], [0, 2]]
    assert len(moe_layers(moe)) == 9
    assert all(m.num_experts == 8 and m.top_k == 2
               for m in moe_layers(moe).values())


def test_placement_config():
    assert even_block_indices((3, 3, 27, 3),
                              stages=(2, ))[2] == list(range(0, 27, 2))
    model = MODELS.build(
        dict(
            type='ConvNeXtMoE',
            arch='mini',
            moe_blocks=[[0], [], [1], []],
            moe_cfg=dict(num_experts=3, top_k=1, routing='image')))
    assert moe_placement(model) == [[0], [], [1], []]
    assert [m.num_experts for m in moe_layers(model).values()] == [3, 3]
    assert moe_placement(ConvNeXtMoE('mini')) == [[], [0], [0, 2], [0]]
    with pytest.raises(ValueError, match='outside'):
        ConvNeXtMoE('mini', moe_blocks=[[], [1], [], []])
    with pytest.raises(ValueError, match='one list per stage'):
        ConvNeXtMoE('mini', moe_blocks=[[0]])
    with pytest.raises(KeyError, match='Unknown ConvNeXtMoE arch'):
        ConvNeXtMoE('huge')


def test_dense_model_is_the_official_convnext(tmp_path):
    dense = random_dense_mini().eval()
    official = to_official_keys(dense.state_dict())
    x = torch.randn(2, 3, 64, 64)
    expected = official_convnext_stage_outputs(official, x)
    expected[3] = F.layer_norm(expected[3].permute(0, 2, 3, 1), (256, ),
                               official['norm.weight'], official['norm.bias'],
                               1e-6).permute(0, 3, 1, 2)
    torch.save({'model': official}, tmp_path / 'official.pth')
    loaded = ConvNeXtMoE(
        'mini',
        moe_blocks=[],
        init_cfg=dict(
            type='Pretrained', checkpoint=str(tmp_path / 'official.pth')))
    loaded.init_weights()
    loaded.eval()
    outs = loaded(x)
    assert [o.shape[1:] for o in outs] == [(32, 16, 16), (64, 8, 8),
                                           (128, 4, 4), (256, 2, 2)]
    for stage in range(3):  # output norms 0-2 are fresh: plain LayerNorm
        expected[stage] = F.layer_norm(
            expected[stage].permute(0, 2, 3, 1),
            expected[stage].shape[1:2],
            eps=1e-6).permute(0, 3, 1, 2)
    for out, exp in zip(outs, expected):
        torch.testing.assert_close(out, exp, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize('key_format',
                         ['official', 'mmpretrain', 'mmpretrain_conv'])
def test_pretrained_moe_equals_dense(tmp_path, key_format):
    dense = random_dense_mini()
    if key_format == 'official':
        with torch.no_grad():  # not in an official file: fresh in both
            for stage in range(3):
                getattr(dense, f'norm{stage}').reset_parameters()
        checkpoint = {'model': to_official_keys(dense.state_dict())}
    else:
        checkpoint = {
            'state_dict':
            to_mmpretrain_keys(dense.state_dict(),
                               key_format == 'mmpretrain_conv')
        }
    path = tmp_path / f'{key_format}.pth'
    torch.save(checkpoint, path)

    moe = ConvNeXtMoE(
        'mini',
        drop_path_rate=0.,
        moe_cfg=dict(num_experts=4, top_k=2),
        init_cfg=dict(type='Pretrained', checkpoint=str(path)))
    moe.init_weights()
    first_moe = moe.stages[1][0].mlp
    assert torch.equal(first_moe.experts.fc1.weight[3],
                       dense.stages[1][0].mlp.fc1.weight)

    with pytest.raises(ValueError, match='prefix'):
        moe.load_pretrained(str(path), prefix='model.backbone.')

    x = torch.randn(2, 3, 64, 64)
    for train in (False, True):  # train: noisy gating, still identical
        dense.train(train)
        moe.train(train)
        with torch.no_grad():
            for out, expected in zip(moe(x), dense(x)):
                torch.testing.assert_close(out, expected, rtol=1e-4, atol=1e-4)


def test_balance_loss_path():
    torch.manual_seed(0)
    dense = ConvNeXtMoE('mini', moe_blocks=[])
    dense(torch.randn(1, 3, 32, 32))
    assert moe_balance_loss(dense) is None

    model = ConvNeXtMoE('mini', moe_cfg=dict(num_experts=4, top_k=2))
    model.init_weights()
    with pytest.raises(RuntimeError, match='stages.1.0.mlp.*forward in'):
        moe_balance_loss(model)
    other = ConvNeXtMoE('mini', moe_cfg=dict(num_experts=4, top_k=2))
    outs = model(torch.randn(2, 3, 32, 32))
    other(torch.randn(1, 3, 64, 64))  # a second model changes nothing
    loss = moe_balance_loss(model)
    layer_losses = [m.last_balance_loss for m in moe_layers(model).values()]
    assert loss.dim() == 0 and len(layer_losses) == 4
    torch.testing.assert_close(loss, torch.stack(layer_losses).mean())
    (sum(o.mean() for o in outs) + loss).backward()
    router = model.stages[2][0].mlp.router
    assert router.expert_embeddings.grad.abs().sum() > 0

    record_moe_routing(model, expert_counts=True, expert_map=True)
    model.eval()
    model(torch.randn(2, 3, 32, 32))
    layer = model.stages[2][2].mlp
    assert layer.last_expert_counts.shape == (2, 4)
    assert layer.last_expert_map.shape == (2, 2, 2, 2)  # stride 16 of 32


def test_frozen_stages_and_out_indices():
    model = ConvNeXtMoE('mini', frozen_stages=2, out_indices=(1, 3))
    model.train()
    for stage in range(2):
        assert not any(p.requires_grad
                       for p in model.stages[stage].parameters())
        assert not model.stages[stage].training
    assert model.stages[2].training
    assert all(p.requires_grad for p in model.stages[2].parameters())
    outs = model(torch.randn(1, 3, 32, 32))
    assert [o.shape[1] for o in outs] == [64, 256]
    # The frozen stage-1 MoE is in eval mode: its loss is left out.
    assert moe_balance_loss(model).dim() == 0
    assert not hasattr(model, 'norm0')


@pytest.mark.parametrize('stem_norm_cfg, sees_contrast',
                         [(None, False),
                          (dict(type='GN', num_groups=1, eps=1e-6), True)])
def test_stem_norm_and_local_contrast(stem_norm_cfg, sees_contrast):
    """At ConvNeXt's zero-bias init the per-location LayerNorm gives a
    texture and the same texture at 3x contrast the same C2 features; one
    GroupNorm over the map (the from-scratch mini configs) tells them apart."""
    torch.manual_seed(0)
    model = ConvNeXtMoE('mini', drop_path_rate=0., stem_norm_cfg=stem_norm_cfg)
    model.init_weights()
    model.eval()
    tile = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        c2 = model(torch.cat([tile, 3 * tile], dim=3))[0]  # (1, 32, 8, 16)
    # Cells away from the seam between the two halves.
    left, right = c2[..., 2:6, 2:6], c2[..., 2:6, 10:14]
    gap = (left - right).abs().mean() / left.abs().mean()
    assert (gap > 0.5) if sees_contrast else (gap < 1e-4)
    for norm in (model.downsample_layers[0][1], model.norm0):
        assert isinstance(norm, nn.GroupNorm) == sees_contrast


def test_pretrained_into_group_norm_stem_warns(tmp_path, monkeypatch):
    path = tmp_path / 'dense.pth'
    torch.save({'state_dict': random_dense_mini().state_dict()}, path)
    messages = []
    monkeypatch.setattr(convnext_moe, 'print_log',
                        lambda msg, *args, **kwargs: messages.append(msg))
    for stem_norm_cfg in (None, dict(type='GN', num_groups=1)):
        ConvNeXtMoE(
            'mini',
            stem_norm_cfg=stem_norm_cfg,
            init_cfg=dict(type='Pretrained',
                          checkpoint=str(path))).init_weights()
        warned = any('stem_norm_cfg' in msg for msg in messages)
        assert warned == (stem_norm_cfg is not None)


def test_gradient_checkpointing_matches_plain_forward():
    torch.manual_seed(0)
    plain = ConvNeXtMoE(
        'mini', drop_path_rate=0.1, moe_cfg=dict(num_experts=4, top_k=2))
    plain.init_weights()
    ckpt = ConvNeXtMoE(
        'mini',
        drop_path_rate=0.1,
        with_cp=True,
        moe_cfg=dict(num_experts=4, top_k=2))
    ckpt.load_state_dict(plain.state_dict())
    x = torch.randn(2, 3, 32, 32)
    grads = []
    for model in (plain, ckpt):
        torch.manual_seed(1)
        model.zero_grad()
        outs = model(x)
        (sum(o.square().mean()
             for o in outs) + moe_balance_loss(model)).backward()
        grads.append(model.stages[2][0].mlp.router.proj.weight.grad.clone())
    torch.testing.assert_close(grads[0], grads[1])


def test_backbone_under_bf16_autocast():
    torch.manual_seed(0)
    model = ConvNeXtMoE('mini', moe_cfg=dict(num_experts=4, top_k=2))
    with torch.autocast('cpu', dtype=torch.bfloat16):
        outs = model(torch.randn(1, 3, 32, 32))
        loss = sum(o.float().mean() for o in outs) + moe_balance_loss(model)
    loss.backward()
    assert all(torch.isfinite(o).all() for o in outs)


def test_flops_count_active_experts_only():
    """get_flops: all experts in the params, only the top-k in the FLOPs."""
    images = (torch.rand(1, 3, 64, 64), )
    dense = count_params_and_flops(
        ConvNeXtMoE('mini', moe_blocks=[]).eval(), images)
    moe_model = ConvNeXtMoE('mini', moe_cfg=dict(num_experts=4, top_k=2))
    moe = count_params_and_flops(moe_model.eval(), images)
    assert dense['params'] == num_params(ConvNeXtMoE('mini', moe_blocks=[]))
    assert moe['params'] == num_params(moe_model)
    # Per MoE layer and token: one more expert MLP (8 C^2 multiply-adds)
    # plus the router (C -> C/2 projection, C/2 x N cosine scores).
    tokens_and_channels = [(8 * 8, 64), (4 * 4, 128), (4 * 4, 128),
                           (2 * 2, 256)]
    extra = sum(t * (8 * c * c + c * (c // 2) + (c // 2) * 4)
                for t, c in tokens_and_channels)
    assert moe['flops'] - dense['flops'] == extra


def test_paramwise_rules_match_the_stacked_expert_parameters():
    """mmengine's paramwise options (which the DSO constructor keeps) see
    the stacked experts as before: ``custom_keys`` by name, bias rules by
    the parameter name ``bias``."""
    from mmengine.optim import DefaultOptimWrapperConstructor
    model = ConvNeXtMoE('mini', moe_cfg=dict(num_experts=4, top_k=2))
    constructor = DefaultOptimWrapperConstructor(
        dict(
            type='OptimWrapper',
            optimizer=dict(type='AdamW', lr=1e-3, weight_decay=0.05)),
        dict(bias_decay_mult=0., custom_keys={'router': dict(lr_mult=0.5)}))
    groups = constructor(model).optimizer.param_groups
    names = {id(p): n for n, p in model.named_parameters()}
    settings = {
        names[id(p)]: (g['lr'], g['weight_decay'])
        for g in groups
        for p in g['params']
    }
    prefix = 'stages.2.0.mlp.'
    assert settings[prefix + 'experts.fc1.weight'] == (1e-3, 0.05)
    assert settings[prefix + 'experts.fc2.bias'] == (1e-3, 0.)
    assert settings[prefix + 'router.proj.weight'] == (5e-4, 0.05)
    assert len(settings) == len(list(model.parameters()))
