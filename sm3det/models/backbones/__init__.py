from .convnext_da import ConvNeXtDA
from .convnext_moe import ConvNeXtMLP, ConvNeXtMoE, even_block_indices
from .lsknet_moe import LSKNetMoE
from .pvt_v2_moe import PVTv2MoE
from .van_moe import VANMoE

__all__ = [
    'ConvNeXtMoE', 'ConvNeXtMLP', 'even_block_indices', 'ConvNeXtDA', 'VANMoE',
    'LSKNetMoE', 'PVTv2MoE'
]
