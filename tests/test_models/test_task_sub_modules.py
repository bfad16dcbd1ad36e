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

from sm3det.models.detectors.task_sub_modules import group_loss_keys

CH = 64  # the mini FPN's width


def roi_transformer():
    """mmrotate 1.x's RoI Transformer (le90) at the mini FPN's width."""
    stage = dict(
        type='mmdet.Shared2FCBBoxHead',
        predict_box_type='rbox',
        in_channels=CH,
        fc_out_channels=64,
        roi_feat_size=7,
        num_classes=15,
        reg_predictor_cfg=dict(type='mmdet.Linear'),
        cls_predictor_cfg=dict(type='mmdet.Linear'),
        loss_cls=dict(
            type='mmdet.CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0),
        loss_bbox=dict(type='mmdet.SmoothL1Loss', beta=1.0, loss_weight=1.0))
    rcnn = dict(
        assigner=dict(
            type='mmdet.MaxIoUAssigner',
            pos_iou_thr=0.5,
            neg_iou_thr=0.5,
            min_pos_iou=0.5,
            match_low_quality=False,
            ignore_iof_thr=-1,
            iou_calculator=dict(type='RBboxOverlaps2D')),
        sampler=dict(
            type='mmdet.RandomSampler',
            num=64,
            pos_fraction=0.25,
            neg_pos_ub=-1,
            add_gt_as_proposals=True),
        pos_weight=-1,
        debug=False)
    return dict(
        type='mmdet.CascadeRCNN',
        rpn_head=dict(
            type='mmdet.RPNHead',
            in_channels=CH,
            feat_channels=CH,
            anchor_generator=dict(
                type='mmdet.AnchorGenerator',
                scales=[8],
                ratios=[0.5, 1.0, 2.0],
                strides=[4, 8, 16, 32, 64],
                use_box_type=True),
            bbox_coder=dict(
                type='DeltaXYWHHBBoxCoder',
                target_means=[0.0] * 4,
                target_stds=[1.0] * 4,
                use_box_type=True),
            loss_cls=dict(
                type='mmdet.CrossEntropyLoss',
                use_sigmoid=True,
                loss_weight=1.0),
            loss_bbox=dict(
                type='mmdet.SmoothL1Loss', beta=1.0 / 9.0, loss_weight=1.0)),
        roi_head=dict(
            type='mmdet.CascadeRoIHead',
            num_stages=2,
            stage_loss_weights=[1, 1],
            bbox_roi_extractor=[
                dict(
                    type='mmdet.SingleRoIExtractor',
                    roi_layer=dict(
                        type='RoIAlign', output_size=7, sampling_ratio=0),
                    out_channels=CH,
                    featmap_strides=[4, 8, 16, 32]),
                dict(
                    type='RotatedSingleRoIExtractor',
                    roi_layer=dict(
                        type='RoIAlignRotated',
                        out_size=7,
                        sample_num=2,
                        clockwise=True),
                    out_channels=CH,
                    featmap_strides=[4, 8, 16, 32]),
            ],
            bbox_head=[
                dict(
                    stage,
                    bbox_coder=dict(
                        type='DeltaXYWHTHBBoxCoder',
                        angle_version='le90',
                        norm_factor=2,
                        edge_swap=True,
                        target_means=(.0, ) * 5,
                        target_stds=(0.1, 0.1, 0.2, 0.2, 0.1),
                        use_box_type=True),
                    reg_class_agnostic=True),
                dict(
                    stage,
                    bbox_coder=dict(
                        type='DeltaXYWHTRBBoxCoder',
                        angle_version='le90',
                        norm_factor=None,
                        edge_swap=True,
                        proj_xy=True,
                        target_means=[0.] * 5,
                        target_stds=[0.05, 0.05, 0.1, 0.1, 0.05]),
                    reg_class_agnostic=False),
            ]),
        train_cfg=dict(
            rpn=dict(
                assigner=dict(
                    type='mmdet.MaxIoUAssigner',
                    pos_iou_thr=0.7,
                    neg_iou_thr=0.3,
                    min_pos_iou=0.3,
                    match_low_quality=True,
                    ignore_iof_thr=-1,
                    iou_calculator=dict(type='RBbox2HBboxOverlaps2D')),
                sampler=dict(
                    type='mmdet.RandomSampler',
                    num=64,
                    pos_fraction=0.5,
                    neg_pos_ub=-1,
                    add_gt_as_proposals=False),
                allowed_border=0,
                pos_weight=-1,
                debug=False),
            rpn_proposal=dict(
                nms_pre=200,
                max_per_img=100,
                nms=dict(type='nms', iou_threshold=0.7),
                min_bbox_size=0),
            rcnn=[
                dict(
                    rcnn,
                    assigner=dict(
                        rcnn['assigner'],
                        iou_calculator=dict(type='RBbox2HBboxOverlaps2D'))),
                rcnn,
            ]),
        test_cfg=dict(
            rpn=dict(
                nms_pre=200,
                max_per_img=100,
                nms=dict(type='nms', iou_threshold=0.7),
                min_bbox_size=0),
            rcnn=dict(
                nms_pre=200,
                min_bbox_size=0,
                score_thr=0.05,
                nms=dict(type='nms_rotated', iou_threshold=0.1),
                max_per_img=100)))


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
        'sar', 'dota.rpn_head', 'dota.roi_head.bbox_head.0',
        'dota.roi_head.bbox_head.1'
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
