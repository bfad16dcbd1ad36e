"""DSOHook inside a real mmengine Runner: schedules, resume, logging, plot."""
import io
import math
import uuid

import pytest
import torch
from mmengine.logging import MessageHub
from mmengine.model import BaseModel
from mmengine.runner import Runner
from torch import nn
from torch.utils.data import DataLoader

from sm3det.analysis.dso_scalars import find_scalars_file, load_dso_scalars
from sm3det.engine import DSOHook
from repository import run_script

SUB_MODULES = dict(
    sar_head='heads.sar',
    dota_rpn='heads.dota.rpn_head',
    dota_roi='heads.dota.roi_head')
LOSS_TERMS = dict(
    sar_head=['sar.loss_cls', 'sar.loss_bbox'],
    dota_rpn=['dota.loss_rpn_cls'],
    dota_roi=['dota.loss_cls', 'dota.loss_bbox'])
BASE_LR = 0.3
MAX_ITERS = 100


class ScriptedDetector(BaseModel):
    """Returns scripted loss values per iteration and records, at every
    optimizer step, the learning rate of each sub-module's groups."""

    def __init__(self, script):
        super().__init__()
        self.backbone = nn.Linear(2, 2)
        self.heads = nn.ModuleDict(
            dict(
                sar=nn.Linear(2, 1),
                dota=nn.ModuleDict(
                    dict(rpn_head=nn.Linear(2, 1), roi_head=nn.Linear(2, 1)))))
        self.script = script
        self.step_lrs = []

    def forward(self, *args, **kwargs):
        raise NotImplementedError('only train_step is used')

    def train_step(self, data, optim_wrapper):
        lrs = {}
        for group in optim_wrapper.optimizer.param_groups:
            lrs.setdefault(group['sub_module'], group['lr'])
            assert lrs[group['sub_module']] == group['lr']
        self.step_lrs.append(lrs)
        iteration = MessageHub.get_current_instance().get_info('iter')
        # zero-weighted parameter term: exact scripted values, real backward
        anchor = sum(p.sum() for p in self.parameters()) * 0
        losses = {
            key: torch.tensor(value) + anchor
            for key, value in self.script(iteration).items()
        }
        loss, log_vars = self.parse_losses(losses)
        optim_wrapper.update_params(loss)
        return log_vars


def train(work_dir,
          script,
          hook=None,
          max_iters=MAX_ITERS,
          ckpt_interval=0,
          resume_from=None,
          optim_wrapper_type='OptimWrapper'):
    model = ScriptedDetector(script)
    runner = Runner(
        model=model,
        work_dir=str(work_dir),
        experiment_name=f'dso_{uuid.uuid4().hex}',
        train_dataloader=DataLoader(list(range(max_iters)), batch_size=1),
        train_cfg=dict(by_epoch=False, max_iters=max_iters),
        optim_wrapper=dict(
            type=optim_wrapper_type,
            constructor='SubModuleOptimWrapperConstructor',
            optimizer=dict(type='SGD', lr=BASE_LR, momentum=0.9),
            paramwise_cfg=dict(sub_modules=SUB_MODULES)),
        param_scheduler=[
            dict(
                type='LinearLR',
                start_factor=1 / 3,
                by_epoch=False,
                begin=0,
                end=10),
            dict(
                type='MultiStepLR',
                milestones=[40, 70],
                gamma=0.1,
                by_epoch=False),
        ],
        custom_hooks=[hook] if hook is not None else None,
        default_hooks=dict(
            logger=dict(type='LoggerHook', interval=10),
            checkpoint=dict(
                type='CheckpointHook',
                by_epoch=False,
                interval=ckpt_interval or max_iters)),
        load_from=resume_from,
        resume=resume_from is not None,
        default_scope='mmrotate',
        log_level='WARNING')
    runner.train()
    return model.step_lrs, runner


# Exact in float32, the precision of the losses the hook receives.
FIRST = {
    'sar.loss_cls': 1.0,
    'sar.loss_bbox': 0.5,
    'dota.loss_rpn_cls': 0.375,
    'dota.loss_cls': 0.75,
    'dota.loss_bbox': 0.625
}
LATER = {
    'sar.loss_cls': 0.5,
    'sar.loss_bbox': 0.5,
    'dota.loss_rpn_cls': 0.625,
    'dota.loss_cls': 0.375,
    'dota.loss_bbox': 0.25
}


def step_then_constant(iteration):
    return FIRST if iteration == 0 else LATER


def expected_constant_multipliers(theta, tau, b):
    """By hand: reference variant, his = FIRST, cur = LATER, 5 terms."""
    terms = [t for ts in LOSS_TERMS.values() for t in ts]
    w = [FIRST[t] / LATER[t] for t in terms]
    z = sum(math.exp(x / theta) for x in w)
    lam = {t: len(terms) * math.exp(x / theta) / z for t, x in zip(terms, w)}
    expected = {
        s: sum(lam[t] for t in ts) / len(ts)
        for s, ts in LOSS_TERMS.items()
    }
    # KL(P(his) || P(cur)) / n with log-softmax written out
    zc = sum(math.exp(LATER[t]) for t in terms)
    zh = sum(math.exp(FIRST[t]) for t in terms)
    kl = sum(
        math.exp(FIRST[t]) / zh * ((FIRST[t] - math.log(zh)) -
                                   (LATER[t] - math.log(zc)))
        for t in terms) / len(terms)
    expected['shared'] = 2 / (1 + math.exp(-((1 - kl) - b) * tau))
    return expected


@pytest.fixture(scope='module')
def scheduled_lrs(tmp_path_factory):
    """The learning rates of a run without DSO: the schedule itself."""
    lrs, _ = train(tmp_path_factory.mktemp('plain'), step_then_constant)
    return lrs


def test_schedule_without_dso(scheduled_lrs):
    # mmengine's LinearLR reaches its end factor at iteration end - 1
    warmup = [BASE_LR * (1 / 3 + (2 / 3) * t / 9) for t in range(10)]
    expected = warmup + [BASE_LR] * 30 + [BASE_LR * 0.1] * 30 + \
        [BASE_LR * 0.01] * 30
    for t, lrs in enumerate(scheduled_lrs):
        assert set(lrs) == {*SUB_MODULES, 'shared'}
        for lr in lrs.values():
            assert lr == pytest.approx(expected[t], rel=1e-9), t


def test_dso_off_gives_exactly_the_scheduled_lr(tmp_path, scheduled_lrs):
    hook = DSOHook(
        LOSS_TERMS, warmup_iters=0, head_policy=False, backbone_policy=False)
    lrs, _ = train(tmp_path, step_then_constant, hook)
    assert lrs == scheduled_lrs


def test_constant_multipliers_times_schedule_without_drift(
        tmp_path, scheduled_lrs):
    """alpha 0 freezes the EMA at the first losses; the later losses are
    constant, so the multipliers are constant from the warm-up on."""
    warmup, theta, tau, b = 5, 3.0, 3.0, 0.4
    hook = DSOHook(
        LOSS_TERMS, alpha=0.0, theta=theta, tau=tau, b=b, warmup_iters=warmup)
    lrs, runner = train(tmp_path, step_then_constant, hook)

    expected = expected_constant_multipliers(theta, tau, b)
    assert len(lrs) == MAX_ITERS
    for t in range(MAX_ITERS):
        for name, lr in lrs[t].items():
            factor = expected[name] if t >= warmup else 1.0
            assert lr == pytest.approx(
                scheduled_lrs[t][name] * factor, rel=1e-12), (t, name)
    # after training the groups hold the scheduled lr again, untouched
    final = runner.optim_wrapper.optimizer.param_groups
    assert all(g['lr'] == pytest.approx(BASE_LR * 0.01, rel=1e-12)
               for g in final)

    # the multipliers were logged; they read back, and plot_dso draws them
    scalars = find_scalars_file(str(tmp_path))
    steps, series = load_dso_scalars(scalars)
    assert steps == list(range(10, MAX_ITERS + 1, 10))
    assert set(series) == {*SUB_MODULES, 'shared'}
    for name, values in series.items():
        assert values == pytest.approx([expected[name]] * len(steps), rel=1e-6)
    out = tmp_path / 'dso.png'
    printed = run_script('tools/analysis_tools/plot_dso.py', tmp_path, '--out',
                         out).stdout
    assert printed.startswith(f'{len(steps)} points of {sorted(series)} '
                              f'from {scalars} -> {out}')
    assert out.read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'


def varying(iteration):
    """Smoothly varying losses; DOTA is absent from every fifth batch."""
    losses = {
        term:
        0.2 + 1.0 / (1 + 0.1 * iteration) +
        0.3 * math.sin(0.7 * iteration + i)**2
        for i, term in enumerate(FIRST)
    }
    if iteration % 5 == 4:
        losses = {k: v for k, v in losses.items() if k.startswith('sar.')}
    return losses


def test_resume_continues_with_the_same_multipliers(tmp_path):

    def make_hook():
        return DSOHook(LOSS_TERMS, alpha=0.1, warmup_iters=3)

    first_dir = tmp_path / 'full'
    full_lrs, full = train(
        first_dir, varying, make_hook(), max_iters=30, ckpt_interval=15)
    checkpoint = torch.load(first_dir / 'iter_15.pth', weights_only=False)
    assert checkpoint['dso']['num_updates'] == 15
    # the DSO state alone is safe for torch.load(weights_only=True)
    buffer = io.BytesIO()
    torch.save(checkpoint['dso'], buffer)
    buffer.seek(0)
    assert torch.load(buffer, weights_only=True) == checkpoint['dso']

    resumed_lrs, resumed = train(
        tmp_path / 'resumed',
        varying,
        make_hook(),
        max_iters=30,
        resume_from=str(first_dir / 'iter_15.pth'))
    assert resumed_lrs == full_lrs[15:]
    full_hook, resumed_hook = (
        next(h for h in r.hooks if isinstance(h, DSOHook))
        for r in (full, resumed))
    assert resumed_hook.state_dict() == full_hook.state_dict()
    # multipliers really varied over this run
    assert len({lrs['shared'] for lrs in full_lrs}) > 10


@pytest.mark.filterwarnings('ignore:.*GradScaler')
def test_amp_optim_wrapper(tmp_path, scheduled_lrs, monkeypatch):
    if not torch.cuda.is_available():
        # mmengine refuses AmpOptimWrapper without an accelerator; on CPU its
        # grad scaler disables itself, which is all this test needs.
        monkeypatch.setattr(
            'mmengine.optim.optimizer.amp_optimizer_wrapper.'
            'is_cuda_available', lambda: True)
    hook = DSOHook(LOSS_TERMS, alpha=0.0, warmup_iters=5)
    step_lrs, runner = train(
        tmp_path,
        step_then_constant,
        hook,
        optim_wrapper_type='AmpOptimWrapper')
    assert type(runner.optim_wrapper).__name__ == 'AmpOptimWrapper'
    expected = expected_constant_multipliers(theta=3.0, tau=3.0, b=0.4)
    for t, lrs in enumerate(step_lrs):
        for name, lr in lrs.items():
            factor = expected[name] if t >= 5 else 1.0
            assert lr == pytest.approx(
                scheduled_lrs[t][name] * factor, rel=1e-12), (t, name)
