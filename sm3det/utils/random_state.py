"""One process's random state: Python's, NumPy's and torch's generators.

What drives SM3Det's randomness in training: the MoE gating noise and drop
path (torch), the data augmentations (NumPy, Python's ``random``) and, on a
GPU, torch's CUDA generators. ``get_random_state`` returns them as values that
``torch.load(weights_only=True)`` accepts (tuples, lists, ints, floats, byte
tensors), so a checkpoint can carry them.
"""
import contextlib
import random
from typing import Any, Dict, Iterator

import numpy as np
import torch


def get_random_state() -> Dict[str, Any]:
    """The state of every generator this process uses.

    Returns:
        dict: ``python``, ``numpy``, ``torch`` (CPU) and, where CUDA is
        initialised, ``cuda`` (one state per device).
    """
    kind, keys, pos, has_gauss, cached_gaussian = np.random.get_state()
    state = dict(
        python=random.getstate(),
        # the uint32 key array as ints: no NumPy type to allow-list
        numpy=(kind, keys.tolist(), pos, has_gauss, cached_gaussian),
        torch=torch.get_rng_state())
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state['cuda'] = torch.cuda.get_rng_state_all()
    return state


def set_random_state(state: Dict[str, Any]) -> None:
    """Restore what ``get_random_state`` returned (in this or a new process).
    """
    random.setstate(state['python'])
    np.random.set_state(state['numpy'])
    torch.set_rng_state(state['torch'])
    if 'cuda' in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state['cuda'])


@contextlib.contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Run a block with Python's, NumPy's and torch's CPU generators seeded by
    ``seed`` (an int in [0, 2**32)), and give the caller its state back."""
    saved = (random.getstate(), np.random.get_state(), torch.get_rng_state())
    random.seed(seed)
    np.random.seed(seed)
    torch.default_generator.manual_seed(seed)  # the CPU one only
    try:
        yield
    finally:
        random.setstate(saved[0])
        np.random.set_state(saved[1])
        torch.set_rng_state(saved[2])
