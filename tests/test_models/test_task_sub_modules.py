"""DSO and uncertainty weighting group any stock head's losses by sub-module:
here mmrotate 1.x's RoI Transformer (two cascade stages, ``s0.*`` / ``s1.*``
keys) next to GFL, with the loss keys of a real step."""
import os.path as osp
from types import SimpleNamespace

import pytest
import torch
from mmengine.config import Config
from mmengine.optim import OptimWrapper, build_optim_wrapper
from mmengine.registry import init_default_scope
from mmrotate.registry import HOOKS, MODELS
from test_sm3det import MINI_CONFIG, batch

from sm3det.models.losses.loss_groups import group_loss_keys

CH = 64  # the mini FPN's width


def roi_transformer():
    """mmrotate 1.x's RoI Transformer (le90) at the mini FPN's width, with
    few proposals and RoIs."""
    few = dict(nms_pre=200, max_per_img=100)
    sampled = dict(sampler=dict(num=64))  # anchors and RoIs per image
    return dict(
        type='StockDetector',
        config='mmrotate::roi_trans/roi-trans-le90_r50_fpn_1x_dota.py',
        rpn_head=dict(in_channels=CH, feat_channels=CH),
        roi_head=dict(
            bbox_roi_extractor={
                '0': dict(out_channels=CH),
                '1': dict(out_channels=CH)
            },
            bbox_head={
                '0': dict(in_channels=CH, fc_out_channels=64),
                '1': dict(in_channels=CH, fc_out_channels=64)
            }),
        train_cfg=dict(
            rpn=sampled, rpn_proposal=few, rcnn={
                '0': sampled,
                '1': sampled
            }),
        test_cfg=dict(rpn=few, rcnn=few))


def build(repo_root, dota_sub_modules=None, loss_weighting=None):
    """SM3Det-mini (dense) with GFL for SAR and RoI Transformer for DOTA."""
    cfg = Config.fromfile(osp.join(repo_root, MINI_CONFIG))
    model_cfg = cfg.model
    model_cfg.backbone.moe_blocks = []
    dota = dict(detector=roi_transformer(), feat_levels=(0, 1, 2, 3, 4))
    if dota_sub_modules is not None:
        dota['sub_modules'] = dota_sub_modules
    model_cfg.tasks = dict(sar=model_cfg.tasks.sar, dota=dota)
    model_cfg.loss_weighting = loss_weighting
    torch.manual_seed(0)
    model = MODELS.build(model_cfg)
    model.init_weights()
    return model


@pytest.fixture(scope='module')
def model_and_losses():
    init_default_scope('mmrotate')  # module fixtures run before autouse ones
    repo_root = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
    model = build(repo_root)
    data = model.data_preprocessor(batch('sar', 'dota', 'dota'), training=True)
    losses = model(**data, mode='loss')
    return model, losses


def test_dso_groups_roi_transformer_losses(model_and_losses):
    model, losses = model_and_losses
    keys = list(losses)
    # The stock heads' own keys, staged by mmdet's CascadeRoIHead.
    assert {
        'dota.s0.loss_cls', 'dota.s1.loss_bbox', 'dota.s0.acc',
        'dota.loss_rpn_cls', 'sar.loss_dfl'
    } <= set(keys)
    assert {
        name: sm.prefix
        for name, sm in model.sub_modules.items()
    } == {
        'sar': 'heads.sar',
        'dota.rpn_head': 'heads.dota.rpn_head',
        'dota.roi_head': 'heads.dota.roi_head'
    }

    hook = HOOKS.build(dict(type='DSOHook', warmup_iters=0))
    optim_wrapper = build_optim_wrapper(
        model,
        dict(
            constructor='SubModuleOptimWrapperConstructor',
            optimizer=dict(type='SGD', lr=0.01)))
    runner = SimpleNamespace(
        model=model, optim_wrapper=optim_wrapper, hooks=[])
    hook.before_run(runner)
    hook.before_train(runner)
    groups = group_loss_keys(keys, hook.loss_terms)
    assert {
        name: sorted(terms)
        for name, terms in groups.items()
    } == {
        'sar': ['sar.loss_bbox', 'sar.loss_cls', 'sar.loss_dfl'],
        'dota.rpn_head': ['dota.loss_rpn_bbox', 'dota.loss_rpn_cls'],
        'dota.roi_head': [
            'dota.s0.loss_bbox', 'dota.s0.loss_cls', 'dota.s1.loss_bbox',
            'dota.s1.loss_cls'
        ]
    }
    # Every parameter of a head is in its sub-module's optimizer group.
    tag = {
        id(p): g['sub_module']
        for g in optim_wrapper.optimizer.param_groups
        for p in g['params']
    }
    for name, param in model.heads.named_parameters():
        task, child = name.split('.')[:2]
        expected = task if task == 'sar' else f'{task}.{child}'
        assert tag[id(param)] == expected, name

    # The hook turns the step's losses into one multiplier per sub-module.
    values = {
        k: float(sum(v) if isinstance(v, list) else v)
        for k, v in losses.items() if 'loss' in k
    }
    hook.update(values)
    halved = {k: v / 2 for k, v in values.items()}
    multipliers = hook.update(halved)
    assert set(multipliers) == {*groups, 'shared'}
    assert all(m > 0 for m in multipliers.values())


def test_head_sub_modules_from_patterns(repo_root):
    stages = {
        'rpn_head': '*rpn*',
        'roi_head.bbox_head.0': 's0.loss*',
        'roi_head.bbox_head.1': 's1.loss*'
    }
    model = build(
        repo_root,
        dota_sub_modules=stages,
        loss_weighting=dict(type='UncertaintyLossWeighting'))
    assert list(model.sub_modules) == [
        'dota.rpn_head', 'dota.roi_head.bbox_head.0',
        'dota.roi_head.bbox_head.1', 'sar'
    ]
    assert model.loss_weighting.units == list(model.sub_modules)
    data = model.data_preprocessor(batch('dota', 'dota'), training=True)
    losses = model(**data, mode='loss')
    assert losses['dota.roi_head.bbox_head.1.loss_log_variance'] == 0
    optim = OptimWrapper(torch.optim.SGD(model.parameters(), lr=1e-3))
    log_vars = model.train_step(batch('dota', 'sar'), optim)
    assert torch.isfinite(log_vars['loss'])


def test_sub_modules_must_cover_the_head(repo_root):
    with pytest.raises(ValueError, match='outside every sub-module'):
        build(repo_root, dota_sub_modules=dict(rpn_head='*rpn*'))
    with pytest.raises(ValueError, match='no module of'):
        build(repo_root, dota_sub_modules=dict(rpn='*rpn*', roi_head='*'))
