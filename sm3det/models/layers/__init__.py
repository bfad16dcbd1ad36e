from .domain_attention import DomainAttentionAdapter, SEAdapter
from .grid_moe import GridMoE, PointwiseConv
from .moe_utils import (moe_balance_loss, moe_layers, prune_experts,
                        record_moe_routing)
from .routers import CosineRouter, LinearRouter
from .stacked_experts import StackedChain, StackedLinear

__all__ = [
    'GridMoE', 'PointwiseConv', 'CosineRouter', 'LinearRouter',
    'DomainAttentionAdapter', 'SEAdapter', 'moe_layers', 'moe_balance_loss',
    'record_moe_routing', 'prune_experts', 'StackedLinear', 'StackedChain'
]
