"""Compatibility fixes for the one release set that works together.

mmengine 0.10 / mmcv 2.0.1 / mmdet 3.1.0 / mmrotate 1.0.0rc1 were released
before Python 3.10 and torch 2.6; two things break on today's stack and are
fixed here, once, when ``sm3det`` is imported (before anything imports
mmrotate):

1. mmrotate 1.0.0rc1 does ``from collections import Sequence``, removed in
   Python 3.10. ``collections.abc.Sequence`` is the same class.
2. torch >= 2.6 loads checkpoints with ``weights_only=True``. mmengine's
   checkpoints hold its message hub (``HistoryBuffer`` objects, numpy arrays
   and scalars), so resuming fails. Instead of turning safe loading off, the
   few classes mmengine writes are added to torch's allow-list: untrusted
   files that contain anything else are still refused. ``getattr`` is on the
   list because a ``HistoryBuffer`` pickles its statistics functions as
   ``getattr(HistoryBuffer, 'mean')``; torch still refuses to *call* anything
   that is not itself allow-listed, so it only reads attributes.
"""
import collections
import collections.abc

import numpy as np
import torch

if not hasattr(collections, 'Sequence'):
    collections.Sequence = collections.abc.Sequence


def _mmengine_checkpoint_globals():
    """The non-tensor classes that an mmengine checkpoint contains."""
    from mmengine.logging.history_buffer import HistoryBuffer
    multiarray = getattr(np, '_core', np.core).multiarray
    return [
        HistoryBuffer,
        getattr,
        np.ndarray,
        np.dtype,
        multiarray._reconstruct,
        multiarray.scalar,
        # numpy >= 1.25 pickles dtypes by their class, e.g. Float64DType.
        *{
            type(np.dtype(t))
            for t in (np.float64, np.float32, np.float16, np.int64, np.int32,
                      np.uint8, np.bool_)
        },
    ]


if hasattr(torch.serialization, 'add_safe_globals'):
    torch.serialization.add_safe_globals(_mmengine_checkpoint_globals())
