"""What makes the 2023 OpenMMLab release set run on today's Python and torch.

mmengine 0.10 / mmcv 2.0.1 / mmdet 3.1.0 / mmrotate 1.0.0rc1 were released
before Python 3.10 and torch 2.6, and mmcv 2.0.1 ships its kernels only as a
C++ extension that must be compiled. Four fixes make the stack run:

1. mmrotate 1.0.0rc1 does ``from collections import Sequence`` (removed in
   Python 3.10); ``collections.abc.Sequence`` is the same class.
2. torch >= 2.6 loads checkpoints with ``weights_only=True`` and refuses
   mmengine's (they hold its message hub). The few classes mmengine writes are
   added to torch's allow-list (:mod:`.checkpoint_globals`); files holding
   anything else are still refused.
3. Without the compiled ``mmcv._ext``, the PyTorch kernels of
   :mod:`sm3det_compat.ops` stand in for it (:mod:`.mmcv_ext`).
4. In a virtual environment of a Python outside ``/usr`` (pyenv, uv),
   mmengine takes a config's ``import copy`` for a lazy import and refuses
   the config (:mod:`.mmengine_config`).

Why a top-level package and a startup hook: MMRotate's own ``tools/train.py``
imports ``mmrotate.models`` before it reads a config, so fixes applied when
``sm3det`` is imported (through ``custom_imports``) come too late, and the
kernels are imported from inside mmcv's own import, where the ``sm3det``
package (which imports mmrotate) cannot be. The ``sm3det_compat.pth`` file
that ``pip install`` puts into site-packages imports this module at every
interpreter start: it only installs three import hooks and imports neither
torch nor mmcv. ``pip uninstall sm3det`` removes the file.
"""
import collections
import collections.abc

from .checkpoint_globals import allow_mmengine_checkpoints
from .mmcv_ext import install_kernel_finder, ops_backend
from .mmengine_config import accept_stdlib_imports
from .post_import import call_after_import

__all__ = ['install', 'ops_backend']


def install():
    """Apply the four fixes; idempotent, and imports nothing heavy."""
    if not hasattr(collections, 'Sequence'):
        collections.Sequence = collections.abc.Sequence
    install_kernel_finder()
    call_after_import('torch', allow_mmengine_checkpoints)
    call_after_import('mmengine.config.utils', accept_stdlib_imports)


install()
