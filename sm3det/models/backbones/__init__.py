from .convnext_da import ConvNeXtDA
from .convnext_moe import ConvNeXtMLP, ConvNeXtMoE
from .lsknet_moe import LSKNetMoE
from .moe_backbone import MoEBackbone, even_block_indices
from .pvt_v2_moe import PVTv2MoE
from .van_moe import VANMoE

__all__ = [
    'MoEBackbone', 'even_block_indices', 'ConvNeXtMoE', 'ConvNeXtMLP',
    'ConvNeXtDA', 'VANMoE', 'LSKNetMoE', 'PVTv2MoE'
]
