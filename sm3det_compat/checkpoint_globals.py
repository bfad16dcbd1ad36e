"""Let torch >= 2.6's safe loading read mmengine's checkpoints.

torch >= 2.6 loads with ``weights_only=True``; an mmengine checkpoint holds
its message hub (``HistoryBuffer`` objects, numpy arrays and scalars), so
resuming fails. Instead of turning safe loading off, the few classes mmengine
writes join torch's allow-list. ``getattr`` is on it because a
``HistoryBuffer`` pickles its statistics as ``getattr(HistoryBuffer,
'mean')``; torch still refuses to *call* anything not itself allow-listed.
"""


def mmengine_checkpoint_globals():
    """The non-tensor classes that an mmengine checkpoint contains."""
    import numpy as np
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


def allow_mmengine_checkpoints(torch):
    """Make ``torch.load`` allow-list those classes on its first call: mmengine
    is imported then, not at every ``import torch`` (+0.2 s)."""
    serialization = torch.serialization
    if (not hasattr(serialization, 'add_safe_globals')
            or hasattr(serialization.load, '__wrapped__')):
        return
    load = serialization.load
    allowed = []

    def load_mmengine_checkpoints_too(*args, **kwargs):
        if not allowed:
            try:
                serialization.add_safe_globals(mmengine_checkpoint_globals())
            except ImportError:  # no mmengine here: nothing to allow
                pass
            allowed.append(True)
        return load(*args, **kwargs)

    load_mmengine_checkpoints_too.__wrapped__ = load
    load_mmengine_checkpoints_too.__doc__ = load.__doc__
    torch.load = serialization.load = load_mmengine_checkpoints_too
