from .launcher import (CPUDistributedDataParallel, load_run_config,
                       setup_launcher)

__all__ = ['CPUDistributedDataParallel', 'load_run_config', 'setup_launcher']
