"""The DSO config fragment and the DSO configs build what they promise."""
import os.path as osp
from types import SimpleNamespace

import pytest
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper
from torch import nn

from mmrotate.registry import HOOKS
from sm3det.engine import DSOHook


def soi_det_toy():
    """The SM3Det module layout: shared parts and five head sub-modules."""

    def two_stage():
        return nn.ModuleDict(
            dict(rpn_head=nn.Conv2d(4, 2, 1), roi_head=nn.Linear(4, 2)))

    model = nn.Module()
    model.backbone = nn.Conv2d(3, 4, 1)
    model.neck = nn.Conv2d(4, 4, 1)
    model.heads = nn.ModuleDict(
        dict(sar=nn.Conv2d(4, 4, 1), dota=two_stage(),
             dronevehicle=two_stage()))
    return model


def test_fragment_builds_consistent_constructor_and_hook(repo_root):
    cfg = Config.fromfile(osp.join(repo_root, 'configs/_base_/dso.py'))
    hook = HOOKS.build(cfg.dso_hook)
    assert isinstance(hook, DSOHook)
    assert sum(len(terms) for terms in hook.loss_terms.values()) == 11
    assert (hook.alpha, hook.theta, hook.tau, hook.b, hook.warmup_iters) == (
        0.001, 3.0, 3.0, 0.4, 500)
    optim_wrapper = build_optim_wrapper(
        soi_det_toy(),
        dict(cfg.dso_optim_wrapper,
             optimizer=dict(type='AdamW', lr=1e-4, weight_decay=0.05)))
    groups = optim_wrapper.optimizer.param_groups
    assert {g['sub_module'] for g in groups} == {*cfg.dso_sub_modules,
                                                 'shared'}
    hook.before_train(SimpleNamespace(optim_wrapper=optim_wrapper, hooks=[]))


CONFIG_DIR = osp.join(osp.dirname(__file__), '..', '..', 'configs', 'sm3det')
# config -> what its DSO hook must be: (tau, b, head policy, backbone policy),
# or None for no DSO; the paper's DSO ablation and Table 1.
DSO_CONFIGS = {
    'sm3det_convnext-t_fpn_33k_soi-det.py': (3.0, 0.4, True, True),
    'sm3det-dso-only_convnext-t_fpn_33k_soi-det.py': (3.0, 0.5, True, True),
    'sm3det-no-dso_convnext-t_fpn_33k_soi-det.py': None,
    'sm3det-dso-no-head-policy_convnext-t_fpn_33k_soi-det.py':
    (3.0, 0.4, False, True),
    'sm3det-dso-no-backbone-policy_convnext-t_fpn_33k_soi-det.py':
    (3.0, 0.4, True, False),
    'sm3det-dso-tau3-b0.3_convnext-t_fpn_33k_soi-det.py':
    (3.0, 0.3, True, True),
    'sm3det-dso-tau3-b0.5_convnext-t_fpn_33k_soi-det.py':
    (3.0, 0.5, True, True),
    'sm3det-dso-tau3-b0.6_convnext-t_fpn_33k_soi-det.py':
    (3.0, 0.6, True, True),
    'sm3det-dso-tau2-b0.4_convnext-t_fpn_33k_soi-det.py':
    (2.0, 0.4, True, True),
    'sm3det-dso-tau4-b0.4_convnext-t_fpn_33k_soi-det.py':
    (4.0, 0.4, True, True),
    'sm3det_convnext-mini_fpn_600it_soi-det-mini.py': (3.0, 0.4, True, True),
    'sm3det-no-dso_convnext-mini_fpn_600it_soi-det-mini.py': None,
}


@pytest.mark.parametrize('name', sorted(DSO_CONFIGS))
def test_dso_configs(name):
    cfg = Config.fromfile(osp.join(CONFIG_DIR, name))
    hooks = [h for h in cfg.get('custom_hooks', []) if h['type'] == 'DSOHook']
    expected = DSO_CONFIGS[name]
    if expected is None:
        assert not hooks
        assert cfg.optim_wrapper.get('constructor') in (
            None, 'DefaultOptimWrapperConstructor')
        assert 'sub_modules' not in cfg.optim_wrapper.get('paramwise_cfg', {})
        return
    assert cfg.optim_wrapper.constructor == 'SubModuleOptimWrapperConstructor'
    assert len(hooks) == 1
    hook = HOOKS.build(hooks[0])
    assert (hook.tau, hook.b, hook.use_head_policy,
            hook.use_backbone_policy) == expected
    if 'dso-only' in name:
        assert cfg.model.backbone.moe_blocks == []  # dense ConvNeXt-T
