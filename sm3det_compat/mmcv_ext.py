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
import contextlib
import glob
import importlib.machinery
import importlib.util
import os
import os.path as osp
import sys
import types
import zipfile

EXT_NAME = 'mmcv._ext'
COMPILED_OPS_HINT = (
    "mmcv's compiled ops: `bash tools/install.sh --compiled-ops` builds and "
    'installs them (about 10-30 minutes)')


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


def compiled_wheel_dir():
    """Where ``tools/install.sh --compiled-ops`` caches the compiled mmcv
    wheel for this torch build (CPU or CUDA version) and Python."""
    import torch
    cuda = torch.version.cuda if torch.cuda.is_available() else None
    tag = 'cu' + cuda.replace('.', '') if cuda else 'cpu'
    key = (f"torch{torch.__version__.split('+')[0]}-{tag}-"
           f'py{sys.version_info[0]}{sys.version_info[1]}')
    cache = os.environ.get('SM3DET_CACHE', osp.expanduser('~/.cache/sm3det'))
    return osp.join(cache, 'wheels', key)


def load_compiled_ext(unpack_dir):
    """mmcv's compiled ``_ext`` from the cached wheel, loaded as a module of
    its own beside whatever ``mmcv._ext`` is (to compare the two kernels in
    one process), or None when no wheel is cached."""
    wheels = sorted(glob.glob(osp.join(compiled_wheel_dir(), 'mmcv-*.whl')))
    if not wheels:
        return None
    with zipfile.ZipFile(wheels[-1]) as wheel:
        name = next(n for n in wheel.namelist()
                    if n.startswith('mmcv/_ext') and n.endswith('.so'))
        path = wheel.extract(name, unpack_dir)
    loader = importlib.machinery.ExtensionFileLoader('mmcv._ext', path)
    spec = importlib.util.spec_from_loader('mmcv._ext', loader, origin=path)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


def pytorch_ext():
    """The PyTorch kernels as a module-like object (also where ``mmcv._ext``
    is the compiled one)."""
    from .ops import KERNELS
    return types.SimpleNamespace(**KERNELS)


@contextlib.contextmanager
def kernels_in_use(ext):
    """Inside the block, mmcv.ops's wrappers call the kernels of ``ext``
    (e.g. :func:`pytorch_ext` or :func:`load_compiled_ext`'s module)."""
    import mmcv.ops  # noqa: F401  (imports every wrapper module)
    modules = [
        m for name, m in list(sys.modules.items())
        if name.startswith('mmcv.ops.') and hasattr(m, 'ext_module')
    ]
    saved = [m.ext_module for m in modules]
    for module in modules:
        module.ext_module = ext
    try:
        yield ext
    finally:
        for module, old in zip(modules, saved):
            module.ext_module = old
