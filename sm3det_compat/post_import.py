"""Run a function right after a module is first imported (a post-import hook),
without importing that module ahead of time."""
import importlib.machinery
import sys


class _PostImportFinder:
    """Finds nothing itself: when ``name`` is imported it asks the normal
    path finder for the spec and makes the loader call ``callback(module)``
    once the module has executed."""

    def __init__(self, name, callback):
        self.name, self.callback = name, callback

    def find_spec(self, fullname, path=None, target=None):
        if fullname != self.name:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or spec.loader is None:
            return spec
        exec_module, callback = spec.loader.exec_module, self.callback

        def exec_then_call(module):
            # One shot, once the module runs: a mere lookup
            # (importlib.util.find_spec) must not disarm the hook.
            if self in sys.meta_path:
                sys.meta_path.remove(self)
            exec_module(module)
            callback(module)

        # only this spec's loader instance is changed
        spec.loader.exec_module = exec_then_call
        return spec


def call_after_import(name, callback):
    """Call ``callback(module)`` now if ``name`` is imported, else right
    after it is (``name`` is found by the path finder, as a top-level
    module or in its parent package)."""
    if name in sys.modules:
        callback(sys.modules[name])
    elif not any(
            isinstance(f, _PostImportFinder) and f.name == name
            for f in sys.meta_path):
        sys.meta_path.insert(0, _PostImportFinder(name, callback))
