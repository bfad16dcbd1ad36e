"""Parameter groups tagged by sub-module, built through mmengine's
``build_optim_wrapper`` from a config as a training run does."""
import pytest
from mmengine.optim import build_optim_wrapper
from torch import nn

SUB_MODULES = dict(
    sar_head='heads.sar',
    dota_rpn='heads.dota.rpn_head',
    dota_roi='heads.dota.roi_head')


class ToyDetector(nn.Module):
    """Shared backbone/neck and per-dataset heads, with norm layers."""

    def __init__(self):
        super().__init__()
        self.backbone = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4))
        self.neck = nn.Conv2d(4, 4, 1)
        self.heads = nn.ModuleDict(
            dict(
                sar=nn.Sequential(nn.Conv2d(4, 4, 1), nn.GroupNorm(2, 4)),
                dota=nn.ModuleDict(
                    dict(
                        rpn_head=nn.Conv2d(4, 2, 1),
                        roi_head=nn.Sequential(
                            nn.Linear(4, 4), nn.LayerNorm(4))))))
        self.backbone[0].bias.requires_grad_(False)  # a frozen parameter


def expected_tag(name, sub_modules=SUB_MODULES):
    matching = [(len(p), s) for s, p in sub_modules.items()
                if name == p or name.startswith(p + '.')]
    return max(matching)[1] if matching else 'shared'


def build(model, paramwise_cfg, optimizer=None):
    cfg = dict(
        constructor='SubModuleOptimWrapperConstructor',
        optimizer=optimizer or dict(type='SGD', lr=0.01, momentum=0.9),
        paramwise_cfg=paramwise_cfg)
    return build_optim_wrapper(model, cfg)


def tag_of_each_param(optim_wrapper, model):
    """{parameter name: [tags of the groups that hold it]}"""
    name_of = {id(p): n for n, p in model.named_parameters()}
    tags = {}
    for group in optim_wrapper.optimizer.param_groups:
        for p in group['params']:
            tags.setdefault(name_of[id(p)], []).append(group['sub_module'])
    return tags


def test_every_trainable_param_in_exactly_one_tagged_group():
    model = ToyDetector()
    optim_wrapper = build(model, dict(sub_modules=SUB_MODULES))
    tags = tag_of_each_param(optim_wrapper, model)
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert sorted(tags) == sorted(trainable)
    assert 'backbone.0.bias' not in tags
    for name, group_tags in tags.items():
        assert group_tags == [expected_tag(name)], name
    # without other paramwise options: one merged group per sub-module
    groups = optim_wrapper.optimizer.param_groups
    assert sorted(g['sub_module']
                  for g in groups) == sorted([*SUB_MODULES, 'shared'])
    assert all(g['lr'] == 0.01 for g in groups)


def test_paramwise_options_are_kept():
    model = ToyDetector()
    optim_wrapper = build(
        model,
        dict(
            sub_modules=SUB_MODULES,
            norm_decay_mult=0.0,
            bias_decay_mult=0.5,
            custom_keys={'heads.dota.rpn_head': dict(lr_mult=2.0)}),
        optimizer=dict(type='AdamW', lr=1e-4, weight_decay=0.05))
    name_of = {id(p): n for n, p in model.named_parameters()}
    norm_params = {
        f'{prefix}.{n}'
        for prefix, m in model.named_modules()
        if isinstance(m, (nn.BatchNorm2d, nn.GroupNorm, nn.LayerNorm))
        for n, _ in m.named_parameters()
    }
    seen = 0
    for group in optim_wrapper.optimizer.param_groups:
        for p in group['params']:
            name = name_of[id(p)]
            seen += 1
            assert group['sub_module'] == expected_tag(name)
            if name.startswith('heads.dota.rpn_head'):
                assert group['lr'] == pytest.approx(2e-4)
                assert group['weight_decay'] == pytest.approx(0.05)
            elif name in norm_params:
                assert group['weight_decay'] == 0.0, name
            elif name.endswith('bias'):
                assert group['weight_decay'] == pytest.approx(0.025), name
            else:
                assert group['weight_decay'] == pytest.approx(0.05), name
            if not name.startswith('heads.dota.rpn_head'):
                assert group['lr'] == pytest.approx(1e-4)
    assert seen == sum(p.requires_grad for p in model.parameters())


def test_longest_prefix_wins_and_prefix_lists():
    model = ToyDetector()
    sub_modules = dict(
        dota='heads.dota',
        dota_rpn='heads.dota.rpn_head',
        sar_head=['heads.sar.0', 'heads.sar.1'])
    tags = tag_of_each_param(
        build(model, dict(sub_modules=sub_modules)), model)
    assert tags['heads.dota.rpn_head.weight'] == ['dota_rpn']
    assert tags['heads.dota.roi_head.0.weight'] == ['dota']
    assert tags['heads.sar.1.weight'] == ['sar_head']
    assert tags['neck.weight'] == ['shared']


@pytest.mark.parametrize('paramwise_cfg,match', [
    (dict(bias_lr_mult=2.0), 'has no .sub_modules. to tag'),
    (dict(sub_modules=dict(shared='neck')), 'shared'),
    (dict(sub_modules=dict(a='neck', b='neck')), 'both'),
])
def test_bad_config(paramwise_cfg, match):
    with pytest.raises(ValueError, match=match):
        build(ToyDetector(), paramwise_cfg)


def test_prefix_matching_nothing_is_an_error():
    with pytest.raises(ValueError, match=r"\['heads.optical'\].*neck"):
        build(ToyDetector(), dict(sub_modules=dict(x='heads.optical')))
