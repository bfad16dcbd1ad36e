"""The DSO config fragment and the DSO configs build what they promise."""
import os.path as osp
from types import SimpleNamespace

import pytest
import torch
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper
from mmrotate.registry import HOOKS, MODELS

from sm3det.engine import DSOHook
from sm3det.models.losses.loss_groups import group_loss_keys

# The reference implementation's five sub-modules (parameter prefix) and 11
# loss terms, as the DSO fragment listed them by hand before.
REFERENCE = {
    'sar': ('heads.sar', ['sar.loss_cls', 'sar.loss_bbox', 'sar.loss_dfl']),
    'dota.rpn_head':
    ('heads.dota.rpn_head', ['dota.loss_rpn_cls', 'dota.loss_rpn_bbox']),
    'dota.roi_head':
    ('heads.dota.roi_head', ['dota.loss_cls', 'dota.loss_bbox']),
    'dronevehicle.rpn_head':
    ('heads.dronevehicle.rpn_head',
     ['dronevehicle.loss_rpn_cls', 'dronevehicle.loss_rpn_bbox']),
    'dronevehicle.roi_head':
    ('heads.dronevehicle.roi_head',
     ['dronevehicle.loss_cls', 'dronevehicle.loss_bbox']),
}
PAPER_CONFIG = 'configs/sm3det/sm3det_convnext-t_fpn_33k_soi-det.py'


def test_paper_config_derives_the_reference_sub_modules(repo_root):
    cfg = Config.fromfile(osp.join(repo_root, PAPER_CONFIG))
    with torch.device('meta'):
        model = MODELS.build(cfg.model)
    assert {
        name: sub_module.prefix
        for name, sub_module in model.sub_modules.items()
    } == {
        name: prefix
        for name, (prefix, _) in REFERENCE.items()
    }
    (hook_cfg, ) = cfg.custom_hooks
    hook = HOOKS.build(hook_cfg)
    assert isinstance(hook, DSOHook)
    assert (hook.alpha, hook.theta, hook.tau, hook.b,
            hook.warmup_iters) == (0.001, 3.0, 3.0, 0.4, 500)
    # The recipe's AmpOptimWrapper needs a GPU; the groups are the same.
    optim_cfg = {
        k: v
        for k, v in cfg.optim_wrapper.items()
        if k not in ('type', 'loss_scale', 'dtype')
    }
    optim_wrapper = build_optim_wrapper(model, optim_cfg)
    runner = SimpleNamespace(
        model=model, optim_wrapper=optim_wrapper, hooks=[])
    hook.before_run(runner)
    hook.before_train(runner)  # groups and hook agree
    # The 11 terms land in their sub-modules; accuracy and the MoE balance
    # loss are no DSO terms.
    terms = [t for _, group in REFERENCE.values() for t in group]
    assert group_loss_keys(['dota.acc', 'loss_moe_balance', *terms[::-1]],
                           hook.loss_terms) == {
                               name: group[::-1]
                               for name, (_, group) in REFERENCE.items()
                           }
    sub_module_of = {
        id(p): g['sub_module']
        for g in optim_wrapper.optimizer.param_groups
        for p in g['params']
    }
    for name, param in model.named_parameters():
        expected = next((n for n, (prefix, _) in REFERENCE.items()
                         if name.startswith(prefix + '.')), 'shared')
        assert sub_module_of[id(param)] == expected, name


CONFIG_DIR = osp.join(osp.dirname(__file__), '..', '..', 'configs', 'sm3det')
# config -> what its DSO hook must be: (tau, b, head policy, backbone policy),
# or None for no DSO; the paper's DSO ablation and Table 1.
DSO_CONFIGS = {
    'sm3det_convnext-t_fpn_33k_soi-det.py': (3.0, 0.4, True, True),
    'sm3det-dso-only_convnext-t_fpn_33k_soi-det.py': (3.0, 0.5, True, True),
    'sm3det-no-dso_convnext-t_fpn_33k_soi-det.py':
    None,
    'sm3det-dso-no-head-policy_convnext-t_fpn_33k_soi-det.py':
    (3.0, 0.4, False, True),
    'sm3det-dso-no-backbone-policy_convnext-t_fpn_33k_soi-det.py':
    (3.0, 0.4, True, False),
    'sm3det-dso-tau3-b0.3_convnext-t_fpn_33k_soi-det.py':
    (3.0, 0.3, True, True),
    'sm3det-dso-tau3-b0.5_convnext-t_fpn_33k_soi-det.py':
    (3.0, 0.5, True, True),
    'sm3det-dso-tau3-b0.6_convnext-t_fpn_33k_soi-det.py': (3.0, 0.6, True,
                                                           True),
    'sm3det-dso-tau2-b0.4_convnext-t_fpn_33k_soi-det.py': (2.0, 0.4, True,
                                                           True),
    'sm3det-dso-tau4-b0.4_convnext-t_fpn_33k_soi-det.py': (4.0, 0.4, True,
                                                           True),
    'sm3det_convnext-mini_fpn_600it_soi-det-mini.py': (3.0, 0.4, True, True),
    'sm3det-no-dso_convnext-mini_fpn_600it_soi-det-mini.py':
    None,
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
