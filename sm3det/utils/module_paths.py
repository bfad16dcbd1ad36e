"""Where a parameter or sub-module lies in a model, by its dotted name."""


def in_module(name: str, path: str) -> bool:
    """Whether the parameter or module ``name`` (e.g.
    ``'heads.dota.rpn_head.rpn_conv.weight'``) lies in the module at ``path``
    (e.g. ``'heads.dota'``); ``''`` is the model itself, holding everything.
    """
    return not path or name == path or name.startswith(path + '.')
