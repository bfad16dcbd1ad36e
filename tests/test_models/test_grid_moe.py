"""GridMoE and its parts: routing, gates, balance loss, gradients, dtypes,
dispatch backends, checkpoint layouts, expert pruning, the MoE-generic
helpers, and the layer against a plain dense reference."""
import copy
import math
import os.path as osp
import re

import pytest
import torch
import torch.nn.functional as F
from mmrotate.registry import MODELS

import sm3det  # noqa: F401  (before mmrotate)
from sm3det.models.layers import (CosineRouter, GridMoE, StackedLinear,
                                  keep_experts, moe_balance_loss, moe_layers,
                                  prune_experts, record_moe_routing)
from sm3det.models.layers.expert_dispatch import (DispatchToSlots, UnsortSlots,
                                                  forced_expert_backend)
from sm3det.models.layers.gating import (probability_in_top_k,
                                         squared_coefficient_of_variation)


def build_moe(channels=8, num_experts=4, top_k=2, **kwargs):
    return GridMoE(
        in_channels=channels,
        expert_cfg=dict(type='ConvNeXtMLP', in_channels=channels, mlp_ratio=2),
        num_experts=num_experts,
        top_k=top_k,
        **kwargs)


def one_hot_linear_router(moe, scale=10.):
    """Make a LinearRouter score expert n by scale * x[n]."""
    weight = torch.zeros_like(moe.router.proj.weight)
    weight[:, :moe.num_experts] = torch.eye(moe.num_experts) * scale
    moe.router.proj.weight.data.copy_(weight)


def test_cosine_router_picks_most_similar_expert():
    router = CosineRouter(in_channels=4, num_experts=4, proj_dim=4)
    router.proj.weight.data.copy_(torch.eye(4))
    router.proj.bias.data.zero_()
    # Expert n's embedding points along axis (n + 1) % 4.
    router.expert_embeddings.data.copy_(torch.eye(4).roll(1, dims=0))
    tokens = torch.eye(4) * 3 + 0.1 * torch.rand(4, 4)
    logits = router(tokens)
    assert logits.argmax(dim=1).tolist() == [3, 0, 1, 2]
    # Cosine x exp(t): bounded by the scale 1 / 0.5 at initialisation.
    assert logits.abs().max() <= 2 + 1e-5
    router.log_scale.data.fill_(10.)  # clamped at ln 100
    assert router(tokens).abs().max() <= 100 + 1e-3

    moe = GridMoE(
        in_channels=4,
        expert_cfg=dict(type='ConvNeXtMLP', in_channels=4),
        num_experts=4,
        top_k=2,
        router_cfg=dict(type='CosineRouter', proj_dim=4),
        noisy_gating=False)
    moe.router.load_state_dict(router.state_dict())
    moe.record_routing(expert_map=True)
    moe.eval()
    # Closest to axis 1 (expert 0), then to axis 3 (expert 2).
    token = torch.tensor([0., 1., 0., 0.5]).view(1, 1, 1, 4)
    moe(token)
    assert moe.last_expert_map.view(-1).tolist() == [0, 2]


def expert_module(moe, index):
    """Expert ``index`` of a ConvNeXtMLP GridMoE as a stand-alone module."""
    mlp = MODELS.build(
        dict(
            type='ConvNeXtMLP',
            in_channels=moe.experts.fc1.in_features,
            mlp_ratio=moe.experts.fc1.out_features /
            moe.experts.fc1.in_features))
    mlp.load_state_dict({
        k: v[index]
        for k, v in moe.experts.state_dict().items()
    })
    return mlp


@pytest.mark.parametrize('routing', ['grid', 'image'])
def test_identical_experts_give_the_expert_output(routing):
    """Gates of a token sum to 1: mixing identical experts changes nothing,
    in eval and with noisy gating in training."""
    torch.manual_seed(0)
    moe = build_moe(routing=routing)
    with torch.no_grad():
        for param in moe.experts.parameters():
            param[1:] = param[0]
    x = torch.randn(2, 5, 6, 8)
    expected = expert_module(moe, 0)(x)
    for train in (False, True):
        moe.train(train)
        torch.testing.assert_close(moe(x), expected)


@pytest.mark.parametrize('backend', ['grouped_mm', 'auto'])
def test_each_expert_computes_only_its_tokens(monkeypatch, backend):
    """grouped_mm: fc1 and fc2 are each one grouped GEMM over exactly the
    routed slots; auto on CPU: one expert at a time, each expert's own rows
    through fc1 then fc2 with its own weights, and no grouped GEMM."""
    torch.manual_seed(0)
    moe = build_moe(num_experts=4, top_k=2).eval()
    grouped, linear = [], []
    grouped_mm, f_linear = F.grouped_mm, F.linear

    def grouped_spy(x, weight, offs):
        grouped.append((x.shape[0], offs.tolist()))
        return grouped_mm(x, weight, offs=offs)

    def linear_spy(x, weight, bias=None):
        linear.append((x.shape[0], weight))
        return f_linear(x, weight, bias)

    monkeypatch.setattr(F, 'grouped_mm', grouped_spy)
    monkeypatch.setattr(F, 'linear', linear_spy)
    moe.record_routing(expert_counts=True)
    if backend == 'auto':
        moe(torch.randn(3, 4, 5, 8))
    else:
        with forced_expert_backend(backend):
            moe(torch.randn(3, 4, 5, 8))
    counts = moe.last_expert_counts
    assert counts.shape == (3, 4)
    assert counts.sum(dim=1).tolist() == [4 * 5 * 2] * 3
    slots = counts.sum(0)
    stacked = (moe.experts.fc1.weight, moe.experts.fc2.weight)
    expert_linears = [(n, w) for n, w in linear
                      if any(w._base is s for s in stacked)]
    if backend == 'grouped_mm':
        assert grouped == [(3 * 4 * 5 * 2, slots.cumsum(0).tolist())] * 2
        assert not expert_linears
        return
    assert not grouped
    expected = []
    for e in range(4):
        if slots[e]:
            expected += [(slots[e].item(), moe.experts.fc1.weight[e]),
                         (slots[e].item(), moe.experts.fc2.weight[e])]
    assert len(expert_linears) == len(expected)
    for (rows, weight), (want_rows,
                         want_weight) in zip(expert_linears, expected):
        assert rows == want_rows and torch.equal(weight, want_weight)


def test_slot_permutations_have_exact_gradients():
    expert_index = torch.tensor([[2, 0], [0, 1], [1, 2]])  # 3 units, k=2
    slot_order = expert_index.flatten().argsort(stable=True)
    inverse_order = slot_order.argsort()
    units = torch.randn(3, 4, dtype=torch.double, requires_grad=True)
    dispatched = DispatchToSlots.apply(units, slot_order, inverse_order, 2)
    # Slots sorted by expert: expert 0 gets units 0, 1; expert 1 units 1, 2.
    torch.testing.assert_close(dispatched, units[[0, 1, 1, 2, 0, 2]])
    torch.autograd.gradcheck(
        lambda u: DispatchToSlots.apply(u, slot_order, inverse_order, 2),
        (units, ))
    torch.autograd.gradcheck(
        lambda rows: UnsortSlots.apply(rows, slot_order, inverse_order),
        (torch.randn(6, 4, dtype=torch.double, requires_grad=True), ))


def test_balance_loss_is_smallest_for_uniform_routing():
    moe = build_moe(
        num_experts=4,
        top_k=1,
        router_cfg=dict(type='LinearRouter'),
        noisy_gating=False).train()
    one_hot_linear_router(moe)
    uniform = torch.eye(8)[:4].repeat(4, 1).view(1, 4, 4, 8)
    skewed = torch.eye(8)[[0, 0, 0, 1]].repeat(4, 1).view(1, 4, 4, 8)
    random = torch.randn(1, 4, 4, 8)
    losses = []
    for x in (uniform, random, skewed):
        moe(x)
        losses.append(moe.last_balance_loss.item())
    assert losses[0] == pytest.approx(0, abs=1e-6)
    assert losses[0] < losses[1] and losses[0] < losses[2]
    # All on one expert of four: cv^2 of (n, 0, 0, 0) is 4 for load alone.
    moe(torch.eye(8)[[0]].repeat(16, 1).view(1, 4, 4, 8))
    assert moe.last_balance_loss.item() > 0.01 * 4


def test_balance_loss_helpers():
    assert squared_coefficient_of_variation(torch.ones(5)).item() == 0
    values = torch.tensor([4., 0., 0., 0.])
    assert squared_coefficient_of_variation(values).item() == pytest.approx(4)
    # Tiny noise: the smooth top-k probability becomes the hard choice.
    clean = torch.tensor([[3., 1., 2., 0.]])
    noise_std = torch.full_like(clean, 1e-4)
    ranked = clean.topk(3, dim=1).values
    prob = probability_in_top_k(clean, clean, noise_std, ranked, top_k=2)
    torch.testing.assert_close(prob, torch.tensor([[1., 0., 1., 0.]]))


def test_gradients_reach_chosen_experts_router_and_noise():
    torch.manual_seed(0)
    moe = build_moe(num_experts=4, top_k=2).train()
    moe.record_routing(expert_counts=True)
    x = torch.randn(2, 6, 6, 8, requires_grad=True)
    (moe(x).square().mean() + moe.last_balance_loss).backward()
    used = moe.last_expert_counts.sum(dim=0) > 0
    assert used.sum() >= 2
    for expert, is_used in enumerate(used.tolist()):
        if is_used:
            assert moe.experts.fc1.weight.grad[expert].abs().sum() > 0
    for param in (moe.router.proj.weight, moe.router.expert_embeddings,
                  moe.router.log_scale, moe.noise_proj.weight):
        assert param.grad is not None and param.grad.abs().sum() > 0
    assert x.grad.abs().sum() > 0


def test_expert_without_tokens_still_joins_backward():
    moe = build_moe(
        num_experts=4,
        top_k=2,
        router_cfg=dict(type='LinearRouter'),
        noisy_gating=False).train()
    one_hot_linear_router(moe)
    moe.record_routing(expert_counts=True)
    x = torch.zeros(2, 3, 3, 8)
    x[..., 0], x[..., 1] = 2., 1.  # every token: experts 0 and 1
    moe(x).sum().backward()
    assert moe.last_expert_counts.sum(0).tolist() == [18, 18, 0, 0]
    for param in moe.experts.parameters():  # one tensor for all experts
        assert param.grad is not None and param.grad[2:].abs().sum() == 0
        assert param.grad[:2].abs().sum() > 0


def test_image_level_routing_routes_an_image_alike():
    torch.manual_seed(0)
    moe = build_moe(num_experts=4, top_k=2, routing='image').train()
    moe.record_routing(expert_counts=True, expert_map=True)
    x = torch.randn(3, 4, 5, 8)
    out = moe(x)
    assert out.shape == x.shape
    expert_map = moe.last_expert_map
    assert expert_map.shape == (3, 4, 5, 2)
    assert (expert_map == expert_map[:, :1, :1]).all()
    assert (moe.last_expert_counts.sum(dim=1) == 4 * 5 * 2).all()
    assert moe.last_balance_loss.dim() == 0


def test_recording_is_off_by_default():
    moe = build_moe().eval()
    moe(torch.randn(1, 2, 2, 8))
    assert moe.last_expert_counts is None and moe.last_expert_map is None
    assert moe.last_balance_loss is None  # eval: no auxiliary loss


def test_bf16_autocast_forward_backward():
    torch.manual_seed(0)
    moe = build_moe().train()
    x = torch.randn(2, 4, 4, 8, requires_grad=True)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        out = moe(x)
        loss = out.float().square().mean() + moe.last_balance_loss
    assert out.dtype == torch.bfloat16
    assert moe.last_balance_loss.dtype == torch.float32
    loss.backward()
    assert torch.isfinite(x.grad).all()


def test_single_linear_expert_from_registry():
    """A 1x1-conv expert (VAN/LSKNet style) changes the channel count."""
    moe = GridMoE(
        in_channels=8,
        expert_cfg=dict(type='PointwiseConv', in_channels=8, out_channels=6),
        num_experts=4,
        top_k=2)
    assert moe(torch.randn(1, 3, 3, 8)).shape == (1, 3, 3, 6)


def test_bad_configs_are_refused():
    with pytest.raises(ValueError, match='top_k'):
        build_moe(num_experts=2, top_k=3)
    with pytest.raises(ValueError, match='routing'):
        build_moe(routing='pixel')
    moe = MODELS.build(
        dict(
            type='GridMoE',
            in_channels=8,
            expert_cfg=dict(type='ConvNeXtMLP', in_channels=8)))
    assert moe.num_experts == 8 and moe.top_k == 2
    assert moe.experts.fc1.weight.shape == (8, 32, 8)
    with pytest.raises(ValueError, match='expert backend'):
        with forced_expert_backend('cuda'):
            pass
    with pytest.raises(TypeError, match='cannot stack'):
        GridMoE(
            in_channels=8,
            expert_cfg=dict(type='DomainAttentionAdapter', channels=8))


# ------------------------------------------------- MoE-generic bookkeeping
class ToyBlock(torch.nn.Module):
    """A dense block (``fc1`` 1x1 conv, ``mlp`` ConvNeXt MLP) or the same
    with each dense part replaced by a GridMoE, as a new MoE backbone would
    do it."""

    def __init__(self, moe=False, channels=8):
        super().__init__()
        mlp = dict(type='ConvNeXtMLP', in_channels=channels, mlp_ratio=2)
        conv = dict(
            type='PointwiseConv', in_channels=channels, out_channels=channels)
        if moe:
            self.fc1 = GridMoE(
                in_channels=channels, expert_cfg=conv, num_experts=3, top_k=2)
            self.mlp = GridMoE(
                in_channels=channels, expert_cfg=mlp, num_experts=4, top_k=2)
        else:
            self.fc1 = torch.nn.Conv2d(channels, channels, 1)
            self.mlp = MODELS.build(mlp)

    def forward(self, x):  # (B, H, W, C)
        if isinstance(self.fc1, GridMoE):
            x = self.fc1(x)
        else:
            x = self.fc1(x.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)
        return self.mlp(x)


def test_dense_checkpoint_loads_into_every_expert():
    torch.manual_seed(0)
    dense, moe = ToyBlock(moe=False), ToyBlock(moe=True)
    # The dense keys (fc1 a 1x1 conv) are all taken, nothing is left over.
    missing, unexpected = moe.load_state_dict(dense.state_dict(), strict=False)
    assert not unexpected
    assert all(re.search(r'router|noise_proj', k) for k in missing)
    x = torch.randn(2, 3, 4, 8)
    for train in (False, True):  # identical experts: the dense output
        moe.train(train)
        torch.testing.assert_close(moe(x), dense(x))


def test_dense_expansion_refuses_wrong_shapes_and_keeps_expert_keys():
    moe = ToyBlock(moe=True)
    state = ToyBlock(moe=False).state_dict()
    state['fc1.weight'] = torch.randn(8, 4, 1, 1)
    with pytest.raises(RuntimeError, match=r'fc1\.weight.*\(8, 4, 1, 1\)'):
        moe.load_state_dict(state, strict=False)
    # A state dict with expert keys is loaded as it is (no expansion).
    other = ToyBlock(moe=True)
    other.load_state_dict(moe.state_dict(), strict=True)
    for key, value in other.state_dict().items():
        assert torch.equal(value, moe.state_dict()[key]), key


def test_keep_experts_keeps_the_routing_among_them():
    torch.manual_seed(0)
    for router_cfg in (dict(type='CosineRouter'), dict(type='LinearRouter')):
        moe = build_moe(num_experts=6, top_k=2, router_cfg=router_cfg)
        if router_cfg['type'] == 'LinearRouter':
            torch.nn.init.normal_(moe.router.proj.weight)
        moe.eval()
        moe.record_routing(expert_map=True)
        x = torch.randn(2, 4, 4, 8)
        expected = moe(x)
        used = moe.last_expert_map.unique().tolist()
        kept = sorted(used + [e for e in range(6) if e not in used][:1])[::-1]
        pruned = copy.deepcopy(moe)
        keep_experts(pruned, kept)
        assert pruned.num_experts == len(kept)
        assert torch.equal(pruned(x), expected)
        # Expert i is the former expert kept[i].
        remap = torch.tensor(kept)[pruned.last_expert_map]
        assert torch.equal(remap, moe.last_expert_map)
        pruned.train()(x).sum().backward()  # still trains
    with pytest.raises(ValueError, match='fewer than top_k'):
        keep_experts(build_moe(num_experts=4, top_k=2), [1])
    with pytest.raises(ValueError, match='distinct'):
        keep_experts(build_moe(num_experts=4, top_k=2), [1, 1])


@pytest.mark.parametrize('backend', ['grouped_mm', 'loop'])
@pytest.mark.parametrize('routing', ['grid', 'image'])
def test_removing_unchosen_experts_is_bit_identical(backend, routing):
    """What a per-sensor export relies on: inputs whose tokens never choose
    an expert give exactly the same outputs without it."""
    torch.manual_seed(0)
    # A 64-wide router embedding, where rounding depends on the GEMM's width.
    moe = build_moe(
        channels=128, num_experts=8, top_k=2, routing=routing).eval()
    # A trained router's spread and sharpness.
    torch.nn.init.normal_(moe.router.expert_embeddings)
    moe.router.log_scale.data.fill_(math.log(50.))
    moe.record_routing(expert_map=True)
    x = torch.randn(1, 1, 2, 128)  # two tokens choose at most 4 experts
    with forced_expert_backend(backend):
        expected = moe(x)
        used = moe.last_expert_map.unique().tolist()
        # Six of eight: a GEMM over six expert columns rounds unlike one
        # over eight (four would not show it).
        kept = sorted(used +
                      [e for e in range(8) if e not in used][:6 - len(used)])
        keep_experts(moe, kept)
        assert torch.equal(moe(x), expected)


def test_prune_experts_by_layer_name_and_load_the_pruned_model():
    model = torch.nn.Sequential(ToyBlock(moe=True), ToyBlock(moe=True))
    assert list(moe_layers(model)) == ['0.fc1', '0.mlp', '1.fc1', '1.mlp']
    prune_experts(model, {'0.mlp': [3, 1], '1.fc1': [0, 2]})
    assert [m.num_experts for m in moe_layers(model).values()] == [3, 2, 2, 4]
    # An exported (pruned) state dict loads into a freshly pruned model.
    fresh = torch.nn.Sequential(ToyBlock(moe=True), ToyBlock(moe=True))
    prune_experts(fresh, {'0.mlp': [3, 1], '1.fc1': [0, 2]})
    fresh.load_state_dict(model.state_dict(), strict=True)
    with pytest.raises(KeyError, match='0.nope'):
        prune_experts(model, {'0.nope': [0, 1]})


def test_balance_loss_and_routing_of_any_module():
    torch.manual_seed(0)
    model = torch.nn.Sequential(ToyBlock(moe=True), ToyBlock(moe=False))
    assert moe_balance_loss(ToyBlock(moe=False)) is None
    with pytest.raises(RuntimeError, match=r"\['0.fc1', '0.mlp'\]"):
        moe_balance_loss(model)
    record_moe_routing(model, expert_counts=True)
    model(torch.randn(2, 3, 3, 8))
    layers = list(moe_layers(model).values())
    torch.testing.assert_close(
        moe_balance_loss(model),
        torch.stack([m.last_balance_loss for m in layers]).mean())
    assert all(m.last_expert_counts.shape[0] == 2 for m in layers)
    model[0].fc1.eval()  # e.g. a frozen stage: left out
    torch.testing.assert_close(
        moe_balance_loss(model), layers[1].last_balance_loss)
    model.eval()
    assert moe_balance_loss(model) is None
    record_moe_routing(model, expert_counts=False)
    assert all(m.last_expert_counts is None for m in layers)


@MODELS.register_module(force=True)
class ToyMoEBackbone(torch.nn.Module):
    """Four strided convs (ConvNeXt-mini's channels and strides) with a
    GridMoE after the last: no MoE-specific method at all."""

    def __init__(self):
        super().__init__()
        channels = (32, 64, 128, 256)
        self.convs = torch.nn.ModuleList(
            torch.nn.Conv2d(
                c_in, c_out, 4 if i == 0 else 2, stride=4 if i == 0 else 2)
            for i, (c_in,
                    c_out) in enumerate(zip((3, ) + channels[:-1], channels)))
        self.moe = GridMoE(
            in_channels=256,
            expert_cfg=dict(
                type='PointwiseConv', in_channels=256, out_channels=256),
            num_experts=4,
            top_k=2)

    def forward(self, x):
        outs = []
        for conv in self.convs:
            x = conv(x)
            outs.append(x)
        outs[-1] = self.moe(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)
        return tuple(outs)


def test_sm3det_adds_the_balance_loss_of_any_moe_backbone():
    from mmengine.config import Config
    from test_sm3det import MINI_CONFIG, batch

    from repository import REPO_ROOT
    cfg = Config.fromfile(osp.join(REPO_ROOT, MINI_CONFIG))
    cfg.model.backbone = dict(type='ToyMoEBackbone')
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    assert not hasattr(model.backbone, 'balance_loss')
    data = model.data_preprocessor(batch('sar', 'dota'), training=True)
    losses = model(**data, mode='loss')
    assert torch.equal(losses['loss_moe_balance'],
                       model.backbone.moe.last_balance_loss)


# ------------------------------------------------ against a dense reference
def dense_reference(moe, x):
    """What the layer computes, written plainly: every expert on every unit,
    weighted by its top-k gate (0 for the experts not chosen), and the
    balance loss (None in eval). Draws the gating noise as the layer does:
    seed alike before both."""
    batch, height, width, channels = x.shape
    units = x.reshape(-1, channels) if moe.routing == 'grid' else \
        x.reshape(batch, height * width, channels)
    router_inputs = units if moe.routing == 'grid' else units.mean(dim=1)
    clean = noisy = moe.router(router_inputs)
    noise_std = None
    if moe.training and moe.noise_proj is not None:
        noise = torch.randn_like(clean)
        noise_std = F.softplus(moe.noise_proj(router_inputs)) + 0.01
        noisy = clean + noise * noise_std
    top, chosen = noisy.topk(moe.top_k, dim=1)
    gates = torch.zeros_like(clean).scatter(1, chosen, top.softmax(dim=1))
    layers = [moe.experts] if isinstance(moe.experts, StackedLinear) else \
        list(moe.experts.children())
    out = 0
    for expert in range(moe.num_experts):
        y = units
        for layer in layers:
            y = F.linear(y, layer.weight[expert], layer.bias[expert]) \
                if isinstance(layer, StackedLinear) else layer(y)
        out = out + gates[:, expert].view(-1, *[1] * (y.dim() - 1)) * y
    out = out.reshape(batch, height, width, -1)
    if not moe.training:
        return out, None

    def cv_squared(values):
        return values.var() / (values.mean()**2 + 1e-10)

    if noise_std is not None and moe.top_k < moe.num_experts:
        ranked = noisy.topk(moe.top_k + 1, dim=1).values
        if_in, if_out = ranked[:, -1:], ranked[:, -2:-1]
        competitor = torch.where(noisy > if_in, if_in, if_out)
        z = (clean - competitor) / noise_std
        load = (0.5 * (1 + torch.erf(z / math.sqrt(2)))).sum(dim=0)
    else:
        load = F.one_hot(chosen, moe.num_experts).sum(dim=(0, 1)).float()
    return out, moe.balance_loss_weight * (
        cv_squared(gates.sum(dim=0)) + cv_squared(load))


MLP_EXPERT = dict(type='ConvNeXtMLP', in_channels=8, mlp_ratio=2)
CONV_EXPERT = dict(type='PointwiseConv', in_channels=8, out_channels=12)


def random_moe(expert_cfg=MLP_EXPERT, **kwargs):
    """A layer with random O(1) weights (a trained-looking noise projection
    and router too)."""
    torch.manual_seed(0)
    moe = GridMoE(in_channels=8, expert_cfg=expert_cfg, **kwargs)
    with torch.no_grad():
        for param in moe.parameters():
            param.normal_(0, 0.5)
    return moe


def run_step(compute, moe, x, seed=1):
    """Forward + backward of ``compute(moe, x) -> (out, balance loss)``
    with fixed gating noise; returns output, loss, input gradient and
    parameter gradients."""
    moe.zero_grad()
    x = x.clone().requires_grad_()
    torch.manual_seed(seed)
    out, balance = compute(moe, x)
    loss = out.square().mean()
    if balance is not None:
        loss = loss + balance
    loss.backward()
    return out, balance, x.grad, {
        name: param.grad
        for name, param in moe.named_parameters()
    }


def layer_step(moe, x):
    out = moe(x)
    return out, moe.last_balance_loss


def assert_same_step(moe, x, backend):
    """The layer (``backend`` forced) and the dense reference agree on
    output, balance loss and every gradient."""
    with forced_expert_backend(backend):
        got = run_step(layer_step, moe, x)
    expected = run_step(dense_reference, moe, x)
    for a, b in zip(expected[:3], got[:3]):
        if a is None:
            assert b is None
        else:
            torch.testing.assert_close(b, a, rtol=1e-5, atol=1e-5)
    for name, grad in expected[3].items():
        if grad is None:
            assert got[3][name] is None, name
        else:
            torch.testing.assert_close(
                got[3][name], grad, rtol=1e-5, atol=1e-5, msg=name)


@pytest.mark.parametrize('routing', ['grid', 'image'])
@pytest.mark.parametrize('top_k', [1, 2, 3])
@pytest.mark.parametrize('backend', ['grouped_mm', 'loop'])
@pytest.mark.parametrize('noisy_gating', [True, False])
def test_layer_computes_what_the_dense_reference_does(routing, top_k, backend,
                                                      noisy_gating):
    moe = random_moe(
        num_experts=6, top_k=top_k, routing=routing, noisy_gating=noisy_gating)
    x = torch.randn(3, 4, 5, 8)
    for train in (True, False):
        assert_same_step(moe.train(train), x, backend)


@pytest.mark.parametrize('backend', ['grouped_mm', 'loop'])
def test_experts_without_tokens_and_single_conv_experts(backend):
    """Two tokens, top-1 of 8 experts: at least six experts get nothing."""
    for expert_cfg in (MLP_EXPERT, CONV_EXPERT):
        moe = random_moe(expert_cfg, num_experts=8, top_k=1).train()
        assert_same_step(moe, torch.randn(1, 1, 2, 8), backend)
    # 12 fp32 outputs are 48 bytes: grouped_mm fits; 6 (24 bytes) does not.
    odd = GridMoE(
        in_channels=8,
        num_experts=4,
        expert_cfg=dict(CONV_EXPERT, out_channels=6))
    with forced_expert_backend(backend):
        assert odd(torch.randn(1, 2, 2, 8)).shape == (1, 2, 2, 6)


def test_per_expert_checkpoint_loads_with_strict_and_gives_same_outputs():
    """The layout of earlier checkpoints, one module per expert
    (``experts.<e>.<key>``), is stacked as it loads."""
    x = torch.randn(2, 3, 3, 8)
    for expert_cfg in (MLP_EXPERT, CONV_EXPERT):
        moe = random_moe(expert_cfg, num_experts=4, top_k=2).eval()
        state = {}
        for key, value in moe.state_dict().items():
            if key.startswith('experts.'):
                for expert in range(4):
                    state[key.replace('experts.', f'experts.{expert}.')] = \
                        value[expert].clone()
            else:
                state[key] = value
        loaded = GridMoE(
            in_channels=8, expert_cfg=expert_cfg, num_experts=4,
            top_k=2).eval()
        loaded.load_state_dict(state, strict=True)
        assert not any(
            re.match(r'experts\.\d', k) for k in loaded.state_dict())
        assert torch.equal(loaded(x), moe(x))
    # A checkpoint of other experts than the layer has: a clear error.
    state.pop('experts.3.weight')
    with pytest.raises(RuntimeError, match=r"'weight' for experts \[0, 1, 2"):
        loaded.load_state_dict(state)


def test_dense_expansion_and_pruning_with_stacked_storage():
    torch.manual_seed(0)
    moe = build_moe(num_experts=4)
    dense = MODELS.build(dict(MLP_EXPERT, mlp_ratio=2))
    moe.load_state_dict(
        dict(
            dense.state_dict(), **{
                k: v
                for k, v in moe.state_dict().items() if 'experts' not in k
            }),
        strict=True)
    assert moe.experts.fc1.weight.shape == (4, 16, 8)
    assert moe.experts.fc1.weight.stride()[0] != 0  # a real copy
    for expert in range(4):
        assert torch.equal(moe.experts.fc2.weight[expert], dense.fc2.weight)
    keep_experts(moe, [3, 0])
    assert moe.experts.fc1.weight.shape == (2, 16, 8)
    assert moe.experts.fc1.bias.shape == (2, 16)


@pytest.mark.parametrize('routing', ['grid', 'image'])
def test_bf16_grouped_path_compiles_without_graph_breaks(routing):
    """fullgraph=True fails on any graph break (a host sync, .tolist(),
    data-dependent Python); dynamo's eager backend checks exactly that
    without a C++ build."""
    if not hasattr(torch, 'compile'):
        pytest.skip('this torch has no torch.compile')
    torch.manual_seed(0)
    moe = build_moe(channels=16, num_experts=4, routing=routing).train()
    x = torch.randn(2, 4, 4, 16)

    def step(x):
        with torch.autocast('cpu', dtype=torch.bfloat16):
            out = moe(x)
        return out.float().square().mean() + moe.last_balance_loss

    with forced_expert_backend('grouped_mm'):
        torch.manual_seed(1)
        expected = step(x)
        torch._dynamo.reset()
        compiled = torch.compile(step, fullgraph=True, backend='eager')
        torch.manual_seed(1)
        loss = compiled(x)
    torch.testing.assert_close(loss, expected)
    loss.backward()
    assert moe.experts.fc1.weight.grad.abs().sum() > 0
