"""glibc's malloc set to reuse large blocks, for runs on the CPU.

A training step allocates and frees the same large tensors every iteration:
the MoE layer's intermediates, and the gradients of its stacked expert
weights (75 MB each at ConvNeXt-T's stage 4). glibc serves every block above
its mmap threshold (32 MB at most, by default) with a fresh ``mmap`` and
unmaps it on ``free``, so every step page-faults those blocks in again,
about 0.8 us per 4 KiB page: 10-20 % of a MoE layer's forward + backward at
SOI-Det's shapes (``tools/analysis_tools/benchmark_moe.py --glibc-default``
shows it). With a higher threshold the blocks stay in the heap and are
reused, as a GPU's caching allocator, jemalloc or tcmalloc do. GPU runs
need none of it: their large tensors live in CUDA's caching allocator.
"""
import ctypes
import os

from mmengine.logging import print_log

# mallopt parameters (glibc's malloc.h).
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
#: Blocks up to this size (bytes) are kept for reuse.
REUSE_LIMIT = 1 << 30
#: Environment settings of glibc's malloc; a user's own choice wins.
MALLOC_ENV = ('MALLOC_MMAP_THRESHOLD_', 'MALLOC_TRIM_THRESHOLD_',
              'GLIBC_TUNABLES')


def reuse_large_cpu_blocks(limit: int = REUSE_LIMIT) -> bool:
    """Make glibc keep freed blocks of up to ``limit`` bytes for reuse
    (process-wide, inherited by forked data-loader workers).

    Up to ``limit`` bytes of freed memory at the top of the heap are kept
    rather than returned to the kernel.

    Returns:
        Whether it was applied: not with another C library (or a malloc
        preloaded in glibc's place that ignores ``mallopt``), nor when the
        environment already sets glibc's malloc (see ``MALLOC_ENV``).
    """
    if any(name in os.environ for name in MALLOC_ENV):
        return False
    try:
        libc = ctypes.CDLL(None)
        libc.gnu_get_libc_version  # only glibc has it
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    applied = bool(mallopt(M_MMAP_THRESHOLD, limit)) and bool(
        mallopt(M_TRIM_THRESHOLD, limit))
    if applied:
        print_log(
            f'CPU run: glibc keeps freed blocks of up to {limit >> 20} MiB '
            'for reuse (sm3det.utils.reuse_large_cpu_blocks)',
            logger='current')
    return applied
