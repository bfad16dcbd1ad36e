from .launcher import (CPUDistributedDataParallel, close_distributed,
                       load_run_config, setup_launcher)

__all__ = [
    'CPUDistributedDataParallel', 'close_distributed', 'load_run_config',
    'setup_launcher'
]
