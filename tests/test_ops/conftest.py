"""Fixtures for the kernel tests: the compiled mmcv ops as a reference.

The compiled kernels run in a subprocess whose ``mmcv`` is the wheel that
``tools/install.sh --compiled-ops`` builds and caches (the test process itself
runs on the PyTorch kernels). Without that wheel the parity tests skip and say
so; the tests against independent references always run.
"""
import glob
import os
import os.path as osp
import subprocess
import sys
import textwrap
import zipfile

import pytest
import torch

from sm3det_compat.compiled_mmcv import (compiled_wheel_dir, kernels_in_use,
                                         pytorch_ext)

_RUNNER = '''
import sys
sys.path.insert(0, {wheel_dir!r})
import torch
import mmcv._ext
assert mmcv._ext.__file__.endswith('.so'), mmcv._ext.__file__
inputs = torch.load({inputs!r}, weights_only=False)
outputs = {{}}
{script}
torch.save(outputs, {outputs!r})
'''


def compiled_mmcv_wheel():
    """The cached compiled mmcv wheel for this torch and Python, or None."""
    wheels = glob.glob(osp.join(compiled_wheel_dir(), 'mmcv-*.whl'))
    return sorted(wheels)[-1] if wheels else None


@pytest.fixture(scope='session')
def compiled_mmcv(tmp_path_factory):
    """``run(script, **inputs) -> dict``: runs ``script`` where ``mmcv.ops``
    has the compiled kernels; the script reads ``inputs`` (a dict of the
    keyword arguments) and fills the dict ``outputs``."""
    wheel = compiled_mmcv_wheel()
    if wheel is None:
        pytest.skip('no compiled mmcv wheel cached (bash tools/install.sh '
                    '--compiled-ops builds one): parity with the compiled '
                    'kernels not checked')
    wheel_dir = str(tmp_path_factory.mktemp('compiled_mmcv'))
    with zipfile.ZipFile(wheel) as zf:
        zf.extractall(wheel_dir)
    env = {k: v for k, v in os.environ.items() if k != 'SM3DET_OPS'}
    count = [0]

    def run(script, **inputs):
        count[0] += 1
        base = osp.join(wheel_dir, f'call{count[0]}')
        torch.save(inputs, base + '.in')
        code = _RUNNER.format(
            wheel_dir=wheel_dir,
            inputs=base + '.in',
            outputs=base + '.out',
            script=textwrap.dedent(script))
        proc = subprocess.run([sys.executable, '-c', code],
                              env=env,
                              capture_output=True,
                              text=True)
        assert proc.returncode == 0, proc.stderr[-3000:]
        return torch.load(base + '.out', weights_only=False)

    return run


@pytest.fixture
def pytorch_kernels():
    """mmcv.ops's own Python wrappers call the PyTorch kernels in this test,
    whichever ``mmcv._ext`` the environment has."""
    with kernels_in_use(pytorch_ext()) as ext:
        yield ext


@pytest.fixture
def one_thread():
    """One torch thread, as the C++ kernels: on busy shared cores intra-op
    threads slow the many small tensor operations of the NMS and IoU tests
    down several times."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
