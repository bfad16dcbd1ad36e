"""GridMoE and its routers: routing, gates, balance loss, gradients, dtypes."""
import pytest
import torch

import sm3det  # noqa: F401  (before mmrotate)
from mmrotate.registry import MODELS
from sm3det.models.layers import CosineRouter, GridMoE
from sm3det.models.layers.grid_moe import (DispatchToSlots, UnsortSlots,
                                           probability_in_top_k,
                                           squared_coefficient_of_variation)


def build_moe(channels=8, num_experts=4, top_k=2, **kwargs):
    return GridMoE(
        in_channels=channels,
        expert_cfg=dict(type='ConvNeXtMLP', in_channels=channels,
                        mlp_ratio=2),
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


@pytest.mark.parametrize('routing', ['grid', 'image'])
def test_identical_experts_give_the_expert_output(routing):
    """Gates of a token sum to 1: mixing identical experts changes nothing,
    in eval and with noisy gating in training."""
    torch.manual_seed(0)
    moe = build_moe(routing=routing)
    for expert in moe.experts[1:]:
        expert.load_state_dict(moe.experts[0].state_dict())
    x = torch.randn(2, 5, 6, 8)
    expected = moe.experts[0](x)
    for train in (False, True):
        moe.train(train)
        torch.testing.assert_close(moe(x), expected)


def test_each_expert_computes_only_its_tokens():
    torch.manual_seed(0)
    moe = build_moe(num_experts=4, top_k=2).eval()
    seen = []
    for expert in moe.experts:
        expert.register_forward_hook(
            lambda m, args, out: seen.append(args[0].shape[0]))
    moe.record_routing(expert_counts=True)
    moe(torch.randn(3, 4, 5, 8))
    assert sum(seen) == 3 * 4 * 5 * 2
    counts = moe.last_expert_counts
    assert counts.shape == (3, 4)
    assert counts.sum(dim=1).tolist() == [4 * 5 * 2] * 3
    assert sorted(seen) == sorted(c for c in counts.sum(0).tolist() if c)


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
    moe = build_moe(num_experts=4, top_k=1, router_cfg=dict(
        type='LinearRouter'), noisy_gating=False).train()
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
    for expert, is_used in zip(moe.experts, used.tolist()):
        if is_used:
            assert expert.fc1.weight.grad.abs().sum() > 0
    for param in (moe.router.proj.weight, moe.router.expert_embeddings,
                  moe.router.log_scale, moe.noise_proj.weight):
        assert param.grad is not None and param.grad.abs().sum() > 0
    assert x.grad.abs().sum() > 0


def test_expert_without_tokens_still_joins_backward():
    moe = build_moe(num_experts=4, top_k=2, router_cfg=dict(
        type='LinearRouter'), noisy_gating=False).train()
    one_hot_linear_router(moe)
    moe.record_routing(expert_counts=True)
    x = torch.zeros(2, 3, 3, 8)
    x[..., 0], x[..., 1] = 2., 1.  # every token: experts 0 and 1
    moe(x).sum().backward()
    assert moe.last_expert_counts.sum(0).tolist() == [18, 18, 0, 0]
    for expert in moe.experts[2:]:
        for param in expert.parameters():
            assert param.grad is not None and param.grad.abs().sum() == 0


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
        dict(type='GridMoE', in_channels=8,
             expert_cfg=dict(type='ConvNeXtMLP', in_channels=8)))
    assert len(moe.experts) == 8 and moe.top_k == 2
