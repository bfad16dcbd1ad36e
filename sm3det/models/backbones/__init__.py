from .convnext_moe import ConvNeXtMLP, ConvNeXtMoE, even_block_indices
from .convnext_da import ConvNeXtDA

__all__ = ['ConvNeXtMoE', 'ConvNeXtMLP', 'even_block_indices', 'ConvNeXtDA']
