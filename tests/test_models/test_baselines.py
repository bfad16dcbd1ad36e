"""Table 1's baselines: DA adapters, UniDet's single-dataset batches,
uncertainty loss weighting; each on its own and in its mini config."""
import itertools
import math
import os.path as osp
from unittest import mock

import pytest
import torch
from mmengine.config import Config
from mmengine.optim import OptimWrapper
from mmrotate.registry import MODELS
from test_sm3det import batch
from torch.utils.data import ConcatDataset, TensorDataset

from sm3det.datasets import SingleSourceSampler
from sm3det.models.backbones import ConvNeXtDA, ConvNeXtMoE
from sm3det.models.layers import DomainAttentionAdapter, moe_layers
from sm3det.models.losses import UncertaintyLossWeighting

BASELINES = 'configs/baselines/{}_convnext-mini_fpn_600it_soi-det-mini.py'


# ----------------------------------------------------------------- DA
@pytest.fixture
def adapter():
    torch.manual_seed(0)
    return DomainAttentionAdapter(channels=8, num_domains=3, reduction=2)


def se_gate(adapter, index, x):
    """``x`` rescaled by adapter ``index`` of the bank alone."""
    logits = adapter.adapters[index](x.mean(dim=(2, 3)))
    return x * logits.sigmoid()[:, :, None, None]


def test_one_hot_attention_gives_that_adapter_alone(adapter):
    x = torch.randn(2, 8, 5, 4)
    outs = []
    for index in range(3):
        one_hot = torch.eye(3)[[index, index]]
        out = adapter(x, attention=one_hot)
        assert torch.allclose(out, se_gate(adapter, index, x), atol=1e-6)
        outs.append(out)
    # three distinct modules with their own parameters, hence own gates
    assert len({id(a) for a in adapter.adapters}) == 3
    assert not torch.equal(adapter.adapters[0].fc1.weight,
                           adapter.adapters[1].fc1.weight)
    for a, b in itertools.combinations(outs, 2):
        assert not torch.allclose(a, b)


def test_hand_set_attention_mixes_adapter_logits_per_image(adapter):
    x = torch.randn(2, 8, 3, 3)
    attention = torch.tensor([[1., 0., 0.], [0., .25, .75]])
    out = adapter(x, attention=attention)
    pooled = x.mean(dim=(2, 3))
    logits = [a(pooled) for a in adapter.adapters]
    gate0 = logits[0][0].sigmoid()
    gate1 = (.25 * logits[1][1] + .75 * logits[2][1]).sigmoid()
    assert torch.allclose(out[0], x[0] * gate0[:, None, None], atol=1e-6)
    assert torch.allclose(out[1], x[1] * gate1[:, None, None], atol=1e-6)
    with pytest.raises(ValueError, match=r'\(B, N\)'):
        adapter(x, attention=torch.ones(2, 2) / 2)


def test_learned_attention_is_per_image_and_trains_every_adapter(adapter):
    with torch.no_grad():  # images whose pooled channels differ strongly
        adapter.attention.weight.normal_(std=1.)
    x = torch.randn(2, 8, 4, 4)
    x[1] += torch.linspace(-3, 3, 8)[:, None, None]
    adapter(x).square().sum().backward()
    attention = adapter.last_attention
    assert attention.shape == (2, 3)
    assert torch.allclose(attention.sum(dim=1), torch.ones(2))
    assert not torch.allclose(attention[0], attention[1], atol=1e-3)
    for name, param in adapter.named_parameters():
        assert param.grad is not None and param.grad.abs().sum() > 0, name


def test_convnext_da_places_one_bank_per_stage_by_default():
    torch.manual_seed(0)
    backbone = ConvNeXtDA(arch='mini', drop_path_rate=0.)
    backbone.init_weights()
    assert list(backbone.domain_attention.keys()) == [
        'stage0_block0', 'stage1_block0', 'stage2_block2', 'stage3_block0'
    ]
    assert not moe_layers(backbone)  # the dense ConvNeXt
    outs = backbone(torch.randn(2, 3, 64, 64))
    assert [tuple(o.shape[1:]) for o in outs] == [(32, 16, 16), (64, 8, 8),
                                                  (128, 4, 4), (256, 2, 2)]
    for layer in backbone.domain_attention.values():
        assert layer.last_attention.shape == (2, 3)
    every_block = ConvNeXtDA(arch='mini', da_blocks='all')
    assert len(every_block.domain_attention) == 1 + 1 + 3 + 1
    with pytest.raises(ValueError, match='da_blocks'):
        ConvNeXtDA(arch='mini', da_blocks=[[0], [1], [0], [0]])


def test_convnext_da_without_adapters_is_the_dense_convnext():
    torch.manual_seed(0)
    dense = ConvNeXtMoE(arch='mini', moe_blocks=[], drop_path_rate=0.)
    no_adapters = ConvNeXtDA(
        arch='mini', da_blocks=[[], [], [], []], drop_path_rate=0.)
    no_adapters.load_state_dict(dense.state_dict())
    x = torch.randn(1, 3, 64, 64)
    for a, b in zip(dense(x), no_adapters(x)):
        assert torch.equal(a, b)


# --------------------------------------------------------- uncertainty
def test_uncertainty_weighting_follows_the_formula():
    weighting = UncertaintyLossWeighting(['a.loss_x', 'a.loss_y', 'b.loss_z'])
    with torch.no_grad():
        weighting.log_variances.copy_(torch.tensor([.5, -1., 2.]))
    losses = {
        'a.loss_x': torch.tensor(2.),
        'a.loss_y': [torch.tensor([1., 3.]),
                     torch.tensor(.5)],  # 2 + 0.5
        'a.acc': torch.tensor(90.),
        'c.loss_w': torch.tensor(4.),
    }  # b.loss_z: no image of dataset b in this batch
    out = weighting(losses)

    assert out['a.loss_x'].item() == pytest.approx(math.exp(-.5) * 2 + .5)
    assert out['a.loss_y'].item() == pytest.approx(math.exp(1.) * 2.5 - 1.)
    assert out['a.weight_x'].item() == pytest.approx(math.exp(-.5))
    assert out['a.weight_y'].item() == pytest.approx(math.exp(1.))
    assert out['a.acc'] is losses['a.acc']
    assert out['c.loss_w'] is losses['c.loss_w']
    assert 'b.loss_z' not in out and 'b.weight_z' not in out

    total = sum(v for k, v in out.items() if 'loss' in k)  # as mmengine
    total.backward()
    # d/ds (exp(-s) L + s) = 1 - exp(-s) L; an absent term gets none
    expected = [1 - math.exp(-.5) * 2, 1 - math.exp(1.) * 2.5, 0.]
    assert weighting.log_variances.grad.tolist() == pytest.approx(expected)


def test_uncertainty_weighting_refuses_bad_terms():
    with pytest.raises(ValueError, match='no losses'):
        UncertaintyLossWeighting(['sar.acc'])
    with pytest.raises(ValueError, match='repeat'):
        UncertaintyLossWeighting(['sar.loss_cls', 'sar.loss_cls'])


# --------------------------------------------------------------- UniDet
def concat(*sizes):
    return ConcatDataset([TensorDataset(torch.arange(n)) for n in sizes])


def source_of(dataset, index):
    return sum(index >= c for c in dataset.cumulative_sizes)


def draw(sampler, num_batches, batch_size=4):
    indices = list(itertools.islice(iter(sampler), num_batches * batch_size))
    return [
        indices[i:i + batch_size] for i in range(0, len(indices), batch_size)
    ]


@pytest.mark.parametrize('ratio, expected', [(None, [1 / 3, 1 / 3, 1 / 3]),
                                             ([2, 1, 1], [.5, .25, .25]),
                                             ([0, 1, 1], [0., .5, .5])])
def test_every_batch_holds_one_dataset_drawn_by_ratio(ratio, expected):
    dataset = concat(40, 3, 200)  # balanced by ratio, not by size
    sampler = SingleSourceSampler(
        dataset, batch_size=4, source_ratio=ratio, seed=0)
    sources = []
    for indices in draw(sampler, 600):
        batch_sources = {source_of(dataset, i) for i in indices}
        assert len(batch_sources) == 1
        sources += batch_sources
    for source, share in enumerate(expected):
        assert sources.count(source) / len(sources) == pytest.approx(
            share, abs=.06)


def sampler_on_rank(dataset, rank, seed=3):
    where = 'sm3det.datasets.single_source_sampler.get_dist_info'
    with mock.patch(where, return_value=(rank, 2)):
        return SingleSourceSampler(dataset, batch_size=4, seed=seed)


def test_ranks_split_each_dataset_and_draw_their_own_datasets():
    dataset = concat(400, 400, 400)
    rank_batches = [
        draw(sampler_on_rank(dataset, rank), 30) for rank in (0, 1)
    ]
    seen = [set(sum(b, [])) for b in rank_batches]
    assert not seen[0] & seen[1]  # one pass: no image on both ranks
    step_sources = [[source_of(dataset, b[0]) for b in batches]
                    for batches in rank_batches]
    assert step_sources[0] != step_sources[1]
    assert draw(sampler_on_rank(dataset, 0), 30) == rank_batches[0]


def test_a_small_dataset_is_cycled_whole():
    dataset = concat(5, 3)
    sampler = SingleSourceSampler(
        dataset, batch_size=3, source_ratio=[0, 1], seed=0)
    first_pass = sum(draw(sampler, 1, batch_size=3), [])
    assert sorted(first_pass) == [5, 6, 7]
    with pytest.raises(ValueError, match='source_ratio'):
        SingleSourceSampler(dataset, batch_size=3, source_ratio=[1])


# ------------------------------------------------- mini configs, one step
def build_mini(name, repo_root):
    cfg = Config.fromfile(osp.join(repo_root, BASELINES.format(name)))
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    return cfg, model


def test_da_mini_config_trains_one_step(repo_root):
    cfg, model = build_mini('da', repo_root)
    assert cfg.train_dataloader.sampler.type == 'InfiniteSampler'
    assert isinstance(model.backbone, ConvNeXtDA)
    optim = OptimWrapper(torch.optim.SGD(model.parameters(), lr=1e-3))
    log_vars = model.train_step(
        batch('sar', 'dota', 'sar', 'dronevehicle'), optim)
    assert torch.isfinite(log_vars['loss'])
    assert 'loss_moe_balance' not in log_vars


def test_unidet_mini_step_trains_only_the_batch_dataset_head(repo_root):
    cfg, model = build_mini('unidet-partitioned', repo_root)
    sampler = cfg.train_dataloader.sampler
    assert sampler.type == 'SingleSourceSampler'
    assert sampler.batch_size == cfg.train_dataloader.batch_size
    assert cfg.find_unused_parameters
    data = model.data_preprocessor(batch(*['dota'] * 4), training=True)
    loss, log_vars = model.parse_losses(model(**data, mode='loss'))
    loss.backward()
    assert {k.split('.')[0] for k in log_vars if k != 'loss'} == {'dota'}
    for name, head in model.heads.items():
        trained = any(p.grad is not None for p in head.parameters())
        assert trained == (name == 'dota'), name
    assert all(p.grad is not None for p in model.backbone.parameters())


def test_uncertainty_mini_config_weights_each_sub_module(repo_root):
    cfg, model = build_mini('uncertainty-weighting', repo_root)
    weighting = model.loss_weighting
    # One s_i per sub-module of the heads, the grouping DSO uses.
    # Heads by task name, whatever the config's order.
    assert weighting.units == list(model.sub_modules) == [
        'dota.rpn_head', 'dota.roi_head', 'dronevehicle.rpn_head',
        'dronevehicle.roi_head', 'sar'
    ]
    with torch.no_grad():
        weighting.log_variances.fill_(1.)
    model.loss_weighting = None  # the raw losses of a real step
    data = model.data_preprocessor(
        batch('sar', 'dota', 'sar', 'dota'), training=True)
    raw = model(**data, mode='loss')
    weighted = weighting(raw)
    present = ['sar', 'dota.rpn_head', 'dota.roi_head']
    for key, value in raw.items():
        value = sum(
            v.mean()
            for v in value) if isinstance(value, list) else value.mean()
        scale = math.exp(-1.) if 'loss' in key and key.startswith(
            ('sar.', 'dota.')) else 1.
        assert weighted[key].mean().item() == pytest.approx(
            scale * value.item(), rel=1e-5), key
    assert {'dota.acc', 'sar.loss_dfl', 'dota.loss_rpn_cls'} <= set(raw)
    for unit in present:
        assert weighted[f'{unit}.weight'].item() == pytest.approx(
            math.exp(-1.))
        assert weighted[f'{unit}.loss_log_variance'].item() == 1.
    loss, log_vars = model.parse_losses(weighted)
    loss.backward()
    assert not any(k.startswith('dronevehicle.') for k in log_vars)
    grad = dict(zip(weighting.units, weighting.log_variances.grad))
    assert all(grad[u] != 0 for u in present)
    assert all(grad[u] == 0 for u in weighting.units if u not in present)
    assert torch.isfinite(loss)
