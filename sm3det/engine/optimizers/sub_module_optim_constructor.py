"""Parameter groups that know which sub-module of the detector they belong to.

Dynamic Sub-module Optimisation (DSO) scales the learning rate of each task
head's parts and of the shared rest separately, so the optimizer's parameter
groups must be split along those sub-modules. This constructor keeps every
paramwise option of mmengine's ``DefaultOptimWrapperConstructor`` and adds a
``'sub_module'`` key to each parameter group, chosen by parameter name prefix.
"""
from typing import Dict, List, Optional, Union

from mmengine.optim import DefaultOptimWrapperConstructor
from mmrotate.registry import OPTIM_WRAPPER_CONSTRUCTORS
from torch import nn

from ...utils.module_paths import in_module

#: Tag of the parameters that belong to no configured sub-module (backbone,
#: MoE routers, neck): they are shared by every task.
SHARED = 'shared'


@OPTIM_WRAPPER_CONSTRUCTORS.register_module()
class SubModuleOptimWrapperConstructor(DefaultOptimWrapperConstructor):
    """Build parameter groups tagged with the sub-module they belong to.

    ``paramwise_cfg.sub_modules`` maps a sub-module name to the module path(s)
    of its parameters, e.g.
    ``dict(sar_head='heads.sar', dota_rpn='heads.dota.rpn_head')``. A parameter
    named ``heads.dota.rpn_head.rpn_conv.weight`` then goes to ``dota_rpn``;
    when several prefixes match, the longest (most specific) wins; parameters
    that match none are tagged ``'shared'``. Without ``sub_modules`` (the
    default), they are the model's own ``sub_modules`` (SM3Det derives them
    from its ``tasks``: ``sar`` -> ``heads.sar``, ``dota.rpn_head`` ->
    ``heads.dota.rpn_head``, ...). The other paramwise options
    (``custom_keys``, ``norm_decay_mult``, ``bias_lr_mult``, ...) work as in
    mmengine; afterwards, groups with identical settings and the same
    sub-module are merged, so the optimizer has a few large groups rather than
    one per parameter.

    Every parameter group gets ``group['sub_module']``. As in mmengine's
    paramwise mode, parameters with ``requires_grad=False`` are left out.

    Args:
        optim_wrapper_cfg (dict): as for ``DefaultOptimWrapperConstructor``.
        paramwise_cfg (dict, optional): mmengine's paramwise options plus
            ``sub_modules`` (dict[str, str | list[str]], optional).
    """

    def __init__(self,
                 optim_wrapper_cfg: dict,
                 paramwise_cfg: Optional[dict] = None):
        # A `sub_modules` key, even None, makes mmengine take its paramwise
        # path (add_params), which is where the tagging happens.
        paramwise_cfg = dict(paramwise_cfg or {})
        paramwise_cfg.setdefault('sub_modules', None)
        super().__init__(optim_wrapper_cfg, paramwise_cfg)
        sub_modules = self.paramwise_cfg['sub_modules']
        self.prefix_to_sub_module = None if sub_modules is None else \
            self._parse_sub_modules(sub_modules)

    @staticmethod
    def _parse_sub_modules(
        sub_modules: Optional[Dict[str, Union[str,
                                              List[str]]]]) -> Dict[str, str]:
        """Turn ``{name: prefix or [prefixes]}`` into ``{prefix: name}``."""
        if not isinstance(sub_modules, dict) or not sub_modules:
            raise ValueError(
                'SubModuleOptimWrapperConstructor: paramwise_cfg.sub_modules '
                'must be a non-empty dict from sub-module name to parameter '
                "name prefix(es), e.g. dict(sar_head='heads.sar'), or None "
                f"(the model's own sub_modules); got {sub_modules!r}")
        prefix_to_sub_module = {}
        for name, prefixes in sub_modules.items():
            if name == SHARED:
                raise ValueError(f"'{SHARED}' is the tag of the parameters "
                                 'outside every sub-module; choose another '
                                 'sub-module name')
            prefixes = [prefixes] if isinstance(prefixes, str) else prefixes
            if not prefixes or not all(
                    isinstance(p, str) and p for p in prefixes):
                raise ValueError(f'sub-module {name!r}: expected a prefix or '
                                 f'a list of prefixes, got {prefixes!r}')
            for prefix in prefixes:
                if prefix in prefix_to_sub_module:
                    raise ValueError(
                        f'prefix {prefix!r} is given to both sub-module '
                        f'{prefix_to_sub_module[prefix]!r} and {name!r}')
                prefix_to_sub_module[prefix] = name
        return prefix_to_sub_module

    @classmethod
    def _model_sub_modules(cls, model: nn.Module) -> Dict[str, str]:
        """``{prefix: name}`` from the model's ``sub_modules`` attribute."""
        sub_modules = getattr(model, 'sub_modules', None)
        if not isinstance(sub_modules, dict) or not sub_modules:
            raise ValueError(
                f'{type(model).__name__} has no `sub_modules` to tag the '
                'parameter groups with (SM3Det derives them from its tasks);'
                ' give paramwise_cfg.sub_modules, e.g. '
                "dict(sar_head='heads.sar')")
        return cls._parse_sub_modules({
            name: sub_module.prefix
            for name, sub_module in sub_modules.items()
        })

    def sub_module_of(self, param_name: str) -> str:
        """The sub-module of a parameter, by its longest matching prefix."""
        matching = [
            prefix for prefix in self.prefix_to_sub_module
            if in_module(param_name, prefix)
        ]
        if not matching:
            return SHARED
        return self.prefix_to_sub_module[max(matching, key=len)]

    def add_params(self,
                   params: List[dict],
                   module: nn.Module,
                   prefix: str = '',
                   is_dcn_module: Optional[Union[int, float]] = None) -> None:
        """mmengine's param groups, then tagged by sub-module and merged.

        mmengine calls this method recursively for every child module (with a
        non-empty ``prefix``); only the outermost call, on the whole model,
        tags the finished list.
        """
        if prefix:
            super().add_params(params, module, prefix, is_dcn_module)
            return
        if self.prefix_to_sub_module is None:
            self.prefix_to_sub_module = self._model_sub_modules(module)
        ungrouped: List[dict] = []
        super().add_params(ungrouped, module, prefix, is_dcn_module)
        # Parameters are identified by object identity, never by value.
        name_of = {
            id(param): name
            for name, param in module.named_parameters(remove_duplicate=False)
        }
        grouped_names = []
        for group in ungrouped:
            # mmengine's add_params puts each parameter in a group of its own.
            (param, ) = group['params']
            grouped_names.append(name_of[id(param)])
            group['sub_module'] = self.sub_module_of(grouped_names[-1])
        unused = [
            prefix for prefix in self.prefix_to_sub_module
            if not any(in_module(name, prefix) for name in grouped_names)
        ]
        if unused:
            raise ValueError(
                f'sub-module prefix(es) {unused} match no trainable parameter '
                f'of {type(module).__name__}; its parameter names look like: '
                f'{", ".join(grouped_names[:5])}, ...')
        params.extend(self._merge_equal_groups(ungrouped))

    @staticmethod
    def _merge_equal_groups(groups: List[dict]) -> List[dict]:
        """Merge groups whose settings (all keys but ``params``) are equal."""
        merged: List[dict] = []
        for group in groups:
            settings = {k: v for k, v in group.items() if k != 'params'}
            for target in merged:
                if {
                        k: v
                        for k, v in target.items() if k != 'params'
                } == settings:
                    target['params'].extend(group['params'])
                    break
            else:
                merged.append(dict(settings, params=list(group['params'])))
        return merged
