"""The tree passes the project's lint (flake8, isort, yapf with setup.cfg's
OpenMMLab settings), so that CI checks it with the tests."""
import os
import os.path as osp
import subprocess
import sys

from repository import REPO_ROOT


def test_tree_passes_lint():
    result = subprocess.run(
        ['bash', osp.join(REPO_ROOT, 'tools', 'misc', 'lint.sh')],
        cwd=REPO_ROOT,
        env=dict(os.environ, PYTHON=sys.executable),
        capture_output=True,
        text=True)
    assert result.returncode == 0, (
        'bash tools/misc/lint.sh found problems (fix them with isort / '
        'yapf -i, see the script):\n' + result.stdout[-6000:] +
        result.stderr[-2000:])
