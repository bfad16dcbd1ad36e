from .grid_moe import GridMoE, PointwiseConv
from .routers import CosineRouter, LinearRouter

__all__ = ['GridMoE', 'PointwiseConv', 'CosineRouter', 'LinearRouter']
