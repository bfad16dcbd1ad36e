from .cpu_memory import reuse_large_cpu_blocks
from .launcher import (CPUDistributedDataParallel, close_distributed,
                       load_run_config, setup_launcher)
from .module_paths import in_module
from .random_state import get_random_state, seeded, set_random_state

__all__ = [
    'CPUDistributedDataParallel', 'close_distributed', 'get_random_state',
    'in_module', 'load_run_config', 'reuse_large_cpu_blocks', 'seeded',
    'set_random_state', 'setup_launcher'
]
