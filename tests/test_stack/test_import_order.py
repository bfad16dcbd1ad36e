"""``import sm3det`` applies the stack's fixes (``sm3det_compat``) before
anything imports mmcv, mmdet or mmrotate, also in an interpreter where the
startup hook did not run (a checkout that was never installed): the order is
``sm3det/__init__.py``'s own, not an accident of what came first."""
import json
import os
import os.path as osp
import site
import subprocess
import sys

#: What must be imported after the fixes: mmrotate needs the ``Sequence``
#: fix, mmcv's ops the kernel finder; mmdet imports both.
NEEDS_FIXES = ('mmcv', 'mmdet', 'mmrotate')

PROBE = f'''
import collections, json, sys
assert 'sm3det_compat' not in sys.modules, 'the startup hook ran'
assert not hasattr(collections, 'Sequence'), 'a fix is already in force'
import sm3det
# sys.modules is in the order in which the modules began to load
watched = ('sm3det_compat', ) + {NEEDS_FIXES!r}
print(json.dumps([name for name in sys.modules if name in watched]))
'''


def import_order(root):
    """The order in which a fresh interpreter without ``site`` (so without
    the ``.pth`` startup hook, with this environment's packages on
    PYTHONPATH) begins to load ``sm3det_compat`` and ``NEEDS_FIXES`` when
    it imports the ``sm3det`` of the checkout at ``root``."""
    paths = [root, *site.getsitepackages(), site.getusersitepackages()]
    proc = subprocess.run([sys.executable, '-S', '-c', PROBE],
                          env=dict(
                              os.environ, PYTHONPATH=os.pathsep.join(paths)),
                          cwd=osp.expanduser('~'),
                          capture_output=True,
                          text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.splitlines()[-1])


def test_importing_sm3det_applies_the_fixes_before_mmrotate(repo_root):
    order = import_order(repo_root)
    assert order[0] == 'sm3det_compat', order
    assert sorted(order[1:]) == sorted(NEEDS_FIXES)
