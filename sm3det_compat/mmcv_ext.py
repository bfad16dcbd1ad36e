"""Serve the PyTorch kernels as ``mmcv._ext`` when mmcv has no compiled one.

mmcv's Python ops (``mmcv.ops.nms``, ``RoIAlignRotated``, ...) reach their
kernels only through ``ext_loader.load_ext('_ext', names)``, which imports
``mmcv._ext`` and checks that each name exists. An import hook that answers
that import with a module of PyTorch functions of the same names and
signatures therefore runs mmcv, mmdet and mmrotate unchanged on top of them.

Backend choice, by the environment variable ``SM3DET_OPS``:
``auto`` (default) takes mmcv's compiled extension where it is installed and
the PyTorch kernels otherwise; ``pytorch`` takes the PyTorch kernels always.
"""
import importlib.machinery
import importlib.util
import os
import sys

EXT_NAME = 'mmcv._ext'
COMPILED_OPS_HINT = (
    "mmcv's compiled ops: `bash tools/install.sh --compiled-ops` builds and "
    'installs them (10-50 minutes on 2 cores)')


def _wants_pytorch():
    choice = os.environ.get('SM3DET_OPS', 'auto').lower()
    if choice not in ('auto', 'pytorch'):
        raise ValueError(f"SM3DET_OPS={choice!r}: use 'auto' (compiled mmcv "
                         "ops where installed) or 'pytorch'")
    return choice == 'pytorch'


class _TorchKernelsLoader:

    def create_module(self, spec):
        return None  # a plain module

    def exec_module(self, module):
        from .ops import KERNELS  # torch is imported only now
        module.__dict__.update(KERNELS)
        module.__getattr__ = _missing_kernel


def _missing_kernel(name):
    """``mmcv._ext``'s attribute for kernels without a PyTorch version: mmcv
    checks only that the name exists at import, so it fails when called."""
    if name.startswith('__'):
        raise AttributeError(name)

    def unavailable(*args, **kwargs):
        raise NotImplementedError(
            f"mmcv kernel '{name}' has no PyTorch implementation in "
            f'sm3det_compat.ops and compiled mmcv ops are not installed. '
            f'Install {COMPILED_OPS_HINT}.')

    unavailable.__name__ = name
    return unavailable


class TorchKernelsFinder:
    """Answers ``import mmcv._ext`` with the PyTorch kernels when the
    compiled extension is absent (or ``SM3DET_OPS=pytorch``)."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname != EXT_NAME:
            return None
        if (not _wants_pytorch()
                and importlib.machinery.PathFinder.find_spec(fullname, path)):
            return None  # the compiled extension is found as usual
        return importlib.util.spec_from_loader(
            fullname, _TorchKernelsLoader(), origin='sm3det_compat.ops')


def install_kernel_finder():
    if not any(isinstance(f, TorchKernelsFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, TorchKernelsFinder())


def ops_backend():
    """``'compiled'`` or ``'pytorch'``: which kernels ``mmcv.ops`` runs (or
    would run, if not imported yet); ``None`` without mmcv."""
    ext = sys.modules.get(EXT_NAME)
    if ext is None:
        try:
            spec = importlib.util.find_spec(EXT_NAME)
        except ImportError:  # mmcv is not installed
            return None
        origin = spec.origin if spec else None
    else:
        origin = getattr(ext, '__file__', None) or ext.__spec__.origin
    return 'pytorch' if origin == 'sm3det_compat.ops' else 'compiled'
