"""The DSO config fragment and the DSO configs build what they promise."""
import glob
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


DSO_CONFIGS = sorted(
    glob.glob(
        osp.join(osp.dirname(__file__), '..', '..', 'configs', 'sm3det',
                 '*dso*.py')))


@pytest.mark.parametrize('path', DSO_CONFIGS, ids=osp.basename)
def test_dso_configs(path):
    cfg = Config.fromfile(path)
    assert cfg.optim_wrapper.constructor == 'SubModuleOptimWrapperConstructor'
    hooks = [h for h in cfg.custom_hooks if h['type'] == 'DSOHook']
    assert len(hooks) == 1
    HOOKS.build(hooks[0])
