"""Import the repository's scripts (tools/ is not a package) in tests.

pytest puts this folder on ``sys.path`` (rootdir-relative conftest), so any
test module can ``from tool_loader import REPO_ROOT, load_tool``.
"""
import importlib.util
import os.path as osp

REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))


def load_tool(relative_path: str):
    """Import ``REPO_ROOT/relative_path`` (a script) as a module."""
    path = osp.join(REPO_ROOT, relative_path)
    name = osp.splitext(osp.basename(path))[0]
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
