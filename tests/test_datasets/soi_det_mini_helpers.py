"""Helpers of the dataset tests: the repository root and importing tool scripts."""
import importlib.util
import os.path as osp

REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
# Size of the session's mini set (see conftest.py): images per part and split.
NUM_TRAIN, NUM_TEST = 8, 4


def load_tool(relative_path: str):
    """Import a script under tools/ (not a package) as a module."""
    path = osp.join(REPO_ROOT, relative_path)
    spec = importlib.util.spec_from_file_location(osp.splitext(osp.basename(path))[0], path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
