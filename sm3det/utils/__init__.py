from .cpu_memory import reuse_large_cpu_blocks
from .launcher import (CPUDistributedDataParallel, close_distributed,
                       load_run_config, setup_launcher)

__all__ = [
    'CPUDistributedDataParallel', 'close_distributed', 'load_run_config',
    'reuse_large_cpu_blocks', 'setup_launcher'
]
