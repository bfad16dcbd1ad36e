"""The repository around the tests: its root, and its scripts run as a user
runs them.

tools/ is not a package and tests never import it: a test of a script's
behaviour runs it in a fresh interpreter and checks its exit status, output
and files. pytest puts this folder on ``sys.path`` (rootdir-relative
conftest), so any test module can ``from repository import ...``.
"""
import os.path as osp
import subprocess
import sys

REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))


def run_script(script: str,
               *args,
               check: bool = True) -> subprocess.CompletedProcess:
    """Run ``python REPO_ROOT/script args...`` from the repository root.

    Args:
        script: the script's path relative to the repository root.
        args: its command line (converted with ``str``).
        check: fail the test, showing the script's output, unless it exits
            with status 0.

    Returns:
        The finished process; ``stdout`` and ``stderr`` as text.
    """
    process = subprocess.run(
        [sys.executable,
         osp.join(REPO_ROOT, script), *map(str, args)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True)
    if check and process.returncode != 0:
        raise AssertionError(
            f'{script} exited with status {process.returncode}\n'
            f'stdout:\n{process.stdout}\nstderr:\n{process.stderr}')
    return process
