from .convnext_moe import ConvNeXtMLP, ConvNeXtMoE, even_block_indices

__all__ = ['ConvNeXtMoE', 'ConvNeXtMLP', 'even_block_indices']
