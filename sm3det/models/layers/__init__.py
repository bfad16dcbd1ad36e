from .domain_attention import DomainAttentionAdapter, SEAdapter
from .expert_pruning import keep_experts, prune_experts
from .grid_moe import GridMoE
from .moe_utils import moe_balance_loss, moe_layers, record_moe_routing
from .pointwise_conv import PointwiseConv
from .routers import CosineRouter, LinearRouter
from .stacked_experts import StackedChain, StackedLinear

__all__ = [
    'GridMoE', 'PointwiseConv', 'CosineRouter', 'LinearRouter',
    'DomainAttentionAdapter', 'SEAdapter', 'moe_layers', 'moe_balance_loss',
    'record_moe_routing', 'keep_experts', 'prune_experts', 'StackedLinear',
    'StackedChain'
]
