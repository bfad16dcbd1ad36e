from .grid_moe import GridMoE
from .routers import CosineRouter, LinearRouter

__all__ = ['GridMoE', 'CosineRouter', 'LinearRouter']
