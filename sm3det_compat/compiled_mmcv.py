"""mmcv's compiled kernels beside the PyTorch ones, to compare the two (tests,
``tools/analysis_tools/benchmark_kernels.py``), and where
``tools/install.sh --compiled-ops`` caches the compiled mmcv wheel."""
import contextlib
import glob
import importlib.machinery
import importlib.util
import os
import os.path as osp
import sys
import types
import zipfile


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
