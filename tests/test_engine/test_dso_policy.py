"""DSO multipliers on scripted loss sequences, against values computed here
independently (closed forms and plain numpy)."""
import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from mmengine.hooks import ParamSchedulerHook
from mmengine.optim import OptimWrapper

from sm3det.engine import DSOHook

LOSS_TERMS = dict(
    sar_head=['sar.loss_cls', 'sar.loss_bbox', 'sar.loss_dfl'],
    dota_rpn=['dota.loss_rpn_cls', 'dota.loss_rpn_bbox'],
    dota_roi=['dota.loss_cls', 'dota.loss_bbox'])
ALL_TERMS = {term for terms in LOSS_TERMS.values() for term in terms}

# Iteration 2 lacks SAR; 'dota.acc' and 'loss' are not configured terms.
SCRIPT = [
    {
        'sar.loss_cls': 1.2,
        'sar.loss_bbox': 0.9,
        'sar.loss_dfl': 0.5,
        'dota.loss_rpn_cls': 0.7,
        'dota.loss_rpn_bbox': 0.3,
        'dota.loss_cls': 1.1,
        'dota.loss_bbox': 0.8,
        'dota.acc': 60.0
    },
    {
        'sar.loss_cls': 0.8,
        'sar.loss_bbox': 1.0,
        'sar.loss_dfl': 0.45,
        'dota.loss_rpn_cls': 0.9,
        'dota.loss_rpn_bbox': 0.2,
        'dota.loss_cls': 1.0,
        'dota.loss_bbox': 0.85,
        'loss': 5.2
    },
    {
        'dota.loss_rpn_cls': 0.5,
        'dota.loss_rpn_bbox': 0.25,
        'dota.loss_cls': 0.6,
        'dota.loss_bbox': 0.9
    },
    {
        'sar.loss_cls': 0.6,
        'sar.loss_bbox': 0.7,
        'sar.loss_dfl': 0.4,
        'dota.loss_rpn_cls': 0.4,
        'dota.loss_rpn_bbox': 0.35,
        'dota.loss_cls': 0.9,
        'dota.loss_bbox': 0.5
    },
]


def numpy_multipliers(his, cur, variant, theta, tau, b, head, backbone):
    """The paper's formulas, written out with numpy on dicts of floats."""
    if variant == 'reference':
        units = {
            s: [[t] for t in terms if t in cur]
            for s, terms in LOSS_TERMS.items()
        }
    else:
        units = {
            s: [[t for t in terms if t in cur]]
            for s, terms in LOSS_TERMS.items()
        }
    units = {s: u for s, u in units.items() if u and u[0]}
    flat = [u for us in units.values() for u in us]
    c = np.array([sum(cur[t] for t in u) for u in flat])
    h = np.array([sum(his[t] for t in u) for u in flat])
    n = len(c)
    e = np.exp(h / c / theta)
    lam = n * e / e.sum()
    out = {s: 1.0 for s in [*LOSS_TERMS, 'shared']}
    if head:
        i = 0
        for s, us in units.items():
            out[s] = float(lam[i:i + len(us)].mean())
            i += len(us)
    if backbone:
        pc, ph = np.exp(c) / np.exp(c).sum(), np.exp(h) / np.exp(h).sum()
        if variant == 'reference':
            kl = np.sum(ph * np.log(ph / pc)) / n
        else:
            kl = np.sum(pc * np.log(pc / ph))
        out['shared'] = float(2 / (1 + np.exp(-((1 - kl) - b) * tau)))
    return out


@pytest.mark.parametrize('variant', ['reference', 'paper'])
@pytest.mark.parametrize('head,backbone', [(True, True), (True, False),
                                           (False, True)])
def test_scripted_sequence_matches_numpy(variant, head, backbone):
    alpha, theta, tau, b, warmup = 0.2, 3.0, 2.0, 0.35, 2
    hook = DSOHook(
        LOSS_TERMS,
        alpha=alpha,
        theta=theta,
        tau=tau,
        b=b,
        warmup_iters=warmup,
        head_policy=head,
        backbone_policy=backbone,
        variant=variant)
    ema = {}
    for step, losses in enumerate(SCRIPT, start=1):
        cur = {t: v for t, v in losses.items() if t in ALL_TERMS}
        for t, v in cur.items():
            ema.setdefault(t, v)
        if step < warmup:
            expected = {s: 1.0 for s in [*LOSS_TERMS, 'shared']}
        else:
            expected = numpy_multipliers(ema, cur, variant, theta, tau, b,
                                         head, backbone)
        got = hook.update(losses)
        assert got == pytest.approx(expected, rel=1e-12, abs=1e-12)
        for t, v in cur.items():
            ema[t] = alpha * v + (1 - alpha) * ema[t]
        assert hook.loss_ema == pytest.approx(ema, rel=1e-12)
    # iteration 3 lacked SAR: its EMA kept the value of iteration 2 and the
    # SAR head had multiplier 1 there (checked above via `expected`).
    assert hook.num_updates == len(SCRIPT)


def test_two_terms_by_hand():
    """cur = [1, 2] against his = [2, 2], theta 1, tau 3, b 0.4."""
    hook = DSOHook(
        dict(a=['la'], b=['lb']),
        alpha=0.5,
        theta=1.0,
        tau=3.0,
        b=0.4,
        warmup_iters=0)
    first = hook.update({'la': 2.0, 'lb': 2.0})
    # the EMA starts at the first value: w = 1, KL = 0, C = 1
    assert first['a'] == first['b'] == 1.0
    assert first['shared'] == pytest.approx(2 / (1 + math.exp(-0.6 * 3)))

    got = hook.update({'la': 1.0, 'lb': 2.0})
    e = math.e
    # w = [2, 1]; lambda = 2 * softmax(w)
    assert got['a'] == pytest.approx(2 * e / (e + 1), rel=1e-12)
    assert got['b'] == pytest.approx(2 / (e + 1), rel=1e-12)
    # P(his) = [1/2, 1/2], P(cur) = [1, e] / (1 + e);
    # reference KL = KL(P(his) || P(cur)) / 2
    kl = 0.5 * (0.5 * math.log(0.5 * (1 + e)) + 0.5 * math.log(0.5 *
                                                               (1 + e) / e))
    assert got['shared'] == pytest.approx(
        2 / (1 + math.exp(-((1 - kl) - 0.4) * 3)), rel=1e-12)
    # EMA with alpha 0.5: la (2 -> 1.5), lb stays 2
    assert hook.loss_ema == {'la': 1.5, 'lb': 2.0}


def test_paper_variant_kl_direction_by_hand():
    hook = DSOHook(
        dict(a=['la'], b=['lb']),
        theta=1.0,
        tau=3.0,
        b=0.4,
        warmup_iters=0,
        variant='paper')
    hook.update({'la': 2.0, 'lb': 2.0})
    got = hook.update({'la': 1.0, 'lb': 2.0})
    e = math.e
    # KL(P(cur) || P(his)) with P(cur) = [1, e] / (1 + e), P(his) = 1/2 each
    pc = [1 / (1 + e), e / (1 + e)]
    kl = sum(p * math.log(p / 0.5) for p in pc)
    assert got['shared'] == pytest.approx(
        2 / (1 + math.exp(-((1 - kl) - 0.4) * 3)), rel=1e-12)


def test_warmup_and_missing_values():
    hook = DSOHook(LOSS_TERMS, warmup_iters=3)
    for _ in range(2):
        assert set(hook.update(SCRIPT[0]).values()) == {1.0}
    got = hook.update(SCRIPT[1])  # third observation: multipliers applied
    assert got['shared'] != 1.0
    # zero / non-finite values are treated as absent: EMA unchanged
    before = dict(hook.loss_ema)
    got = hook.update({
        **SCRIPT[1], 'sar.loss_cls': 0.0,
        'sar.loss_bbox': float('nan'),
        'sar.loss_dfl': float('inf')
    })
    assert got['sar_head'] == 1.0
    for t in LOSS_TERMS['sar_head']:
        assert hook.loss_ema[t] == before[t]


def test_state_dict_round_trip():
    hook = DSOHook(LOSS_TERMS, warmup_iters=0)
    for losses in SCRIPT:
        hook.update(losses)
    checkpoint = {}
    hook.before_save_checkpoint(None, checkpoint)
    restored = DSOHook(LOSS_TERMS, warmup_iters=0)
    restored.after_load_checkpoint(None, checkpoint)
    assert restored.multipliers == hook.multipliers
    assert restored.loss_ema == hook.loss_ema
    assert restored.num_updates == hook.num_updates
    assert restored.update(SCRIPT[0]) == hook.update(SCRIPT[0])


@pytest.mark.parametrize('kwargs,match', [
    (dict(loss_terms={}), 'non-empty'),
    (dict(loss_terms=dict(shared=['x'])), 'shared'),
    (dict(loss_terms=dict(a='loss_a')), 'list'),
    (dict(loss_terms=dict(a=['x'], b=['x'])), 'more than one'),
    (dict(loss_terms=dict(a=['x']), variant='other'), 'variant'),
    (dict(loss_terms=dict(a=['x']), alpha=2.0), 'alpha'),
])
def test_bad_config(kwargs, match):
    with pytest.raises(ValueError, match=match):
        DSOHook(**kwargs)


def _fake_runner(param_groups, hooks=()):
    params = [torch.nn.Parameter(torch.zeros(1)) for _ in param_groups]
    optimizer = torch.optim.SGD(
        [dict(group, params=[p]) for group, p in zip(param_groups, params)],
        lr=0.1)
    return SimpleNamespace(
        optim_wrapper=OptimWrapper(optimizer), hooks=list(hooks))


def test_before_train_checks():
    hook = DSOHook(dict(a=['la']))
    with pytest.raises(ValueError, match='SubModuleOptimWrapperConstructor'):
        hook.before_train(_fake_runner([{}]))
    with pytest.raises(ValueError, match='exactly the sub-modules'):
        hook.before_train(_fake_runner([{'sub_module': 'b'}]))
    tagged = [{'sub_module': 'a'}, {'sub_module': 'shared'}]
    hook.before_train(_fake_runner(tagged, [ParamSchedulerHook()]))
    late = DSOHook(dict(a=['la']))
    late.priority = 'VERY_LOW'
    with pytest.raises(ValueError, match='before ParamSchedulerHook'):
        late.before_train(_fake_runner(tagged, [ParamSchedulerHook()]))
