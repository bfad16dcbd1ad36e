"""Let mmengine 0.10 read configs that import the standard library from any
Python installation.

mmengine tells a lazy-import config from a plain one by its imports: a plain
config may import only built-in modules, which it recognises by their path
lying under ``sys.executable``'s prefix or ``/usr``. In a virtual environment
made from a Python installed elsewhere (pyenv, uv, a module system) the
standard library is under neither, so a base config's ``import copy`` makes
mmengine refuse the whole inheritance chain ("The configuration file type in
the inheritance chain must match"). The standard library's own directory
(``sysconfig``'s ``stdlib``) is accepted too.
"""
import importlib.util
import os
import os.path as osp


def accept_stdlib_imports(utils):
    """Wrap ``mmengine.config.utils._is_builtin_module`` (right after that
    module is imported, before ``mmengine.config.config`` binds it)."""
    import sysconfig
    original = utils._is_builtin_module
    if getattr(original, '__wrapped__', None):
        return
    stdlib = osp.abspath(sysconfig.get_paths()['stdlib']) + os.sep

    def is_builtin_module(module_name):
        if original(module_name):
            return True
        if module_name.startswith('.'):
            return False
        spec = importlib.util.find_spec(module_name.split('.')[0])
        origin = osp.abspath(spec.origin) if spec and spec.origin else ''
        return origin.startswith(stdlib) and 'site-packages' not in origin

    is_builtin_module.__wrapped__ = original
    utils._is_builtin_module = is_builtin_module
