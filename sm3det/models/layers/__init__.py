from .grid_moe import GridMoE, PointwiseConv
from .routers import CosineRouter, LinearRouter
from .domain_attention import DomainAttentionAdapter, SEAdapter

__all__ = ['GridMoE', 'PointwiseConv', 'CosineRouter', 'LinearRouter',
           'DomainAttentionAdapter', 'SEAdapter']
