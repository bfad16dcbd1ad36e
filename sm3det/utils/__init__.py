from .launcher import CPUDistributedDataParallel, setup_launcher

__all__ = ['CPUDistributedDataParallel', 'setup_launcher']
