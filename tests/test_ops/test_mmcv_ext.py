"""How the PyTorch kernels are served as ``mmcv._ext``: the backend choice,
the error for a kernel without a PyTorch version, the log line."""
import os
import subprocess
import sys

import pytest

import sm3det_compat
from sm3det_compat.mmcv_ext import _missing_kernel


def run_python(code, **env):
    proc = subprocess.run([sys.executable, '-c', code],
                          env=dict(os.environ, **env),
                          capture_output=True,
                          text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout.strip()


def test_every_kernel_of_mmcv_ops_is_served_or_named_when_called():
    # mmcv.ops checks at import that every name exists
    import mmcv.ops  # noqa: F401
    missing = _missing_kernel('box_iou_quadri')
    with pytest.raises(NotImplementedError) as error:
        missing(None, None)
    assert "'box_iou_quadri'" in str(error.value)
    assert '--compiled-ops' in str(error.value)
    with pytest.raises(AttributeError):
        _missing_kernel('__path__')  # import machinery probes must not match


def test_sm3det_ops_pytorch_takes_the_pytorch_kernels():
    code = ('import sm3det_compat, mmcv.ops, mmcv._ext; '
            'print(sm3det_compat.ops_backend(), '
            'mmcv._ext.nms.__module__)')
    assert run_python(
        code, SM3DET_OPS='pytorch') == 'pytorch sm3det_compat.ops.nms'


def test_a_bad_sm3det_ops_value_is_refused():
    proc = subprocess.run([sys.executable, '-c', 'import mmcv.ops'],
                          env=dict(os.environ, SM3DET_OPS='cuda'),
                          capture_output=True,
                          text=True)
    assert proc.returncode != 0 and "SM3DET_OPS='cuda'" in proc.stderr


def test_the_backend_is_reported():
    assert sm3det_compat.ops_backend() in ('compiled', 'pytorch')
