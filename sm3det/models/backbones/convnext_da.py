"""Dense ConvNeXt with domain-attentive SE adapters: the DA baseline of
SM3Det's Table 1 (Wang et al., CVPR 2019, on SM3Det's joint model).

A :class:`~sm3det.models.backbones.ConvNeXtMoE` without MoE blocks whose
chosen blocks are followed by a :class:`DomainAttentionAdapter` that rescales
the channels of that block's output, per image.

Placement (default): after the last block of every stage, i.e. once per
stage, on the features that both the FPN (through the stage's output norm)
and the next stage (through its downsampling norm) read. Two reasons:
- SM3Det's Table 1 gives DA the joint model's 66M parameters; one bank per
  stage adds 0.30M to ConvNeXt-T's detector (65.94M), one per block (Wang et
  al.'s SE-ResNet placement, ``da_blocks='all'``) adds 1.23M (66.87M).
- Both readers of a stage output begin with a LayerNorm, so the adapters'
  near-uniform gate at initialisation (sigmoid(~0) = 0.5) leaves the
  pretrained network's function almost unchanged. After a mid-stage block
  the gate rescales the residual stream itself.
"""
from typing import Sequence, Tuple, Union

import torch
from mmengine.model import ModuleDict
from mmrotate.registry import MODELS

from ..layers import DomainAttentionAdapter
from .convnext_moe import ConvNeXtMoE


@MODELS.register_module()
class ConvNeXtDA(ConvNeXtMoE):
    """ConvNeXt (dense by default) with domain-attention adapters.

    Args:
        da_blocks (Sequence[Sequence[int]] | str, optional): Per-stage
            indices of the blocks followed by an adapter, e.g.
            ``[[2], [2], [8], [2]]``. None (default): the last block of every
            stage; ``'all'``: every block.
        num_domains (int): SE adapters per bank (datasets). Defaults to 3.
        reduction (int): SE bottleneck reduction. Defaults to 16.
        moe_blocks: As in :class:`ConvNeXtMoE`; defaults to ``()``, the
            dense ConvNeXt of the DA baseline.
        **kwargs: The other :class:`ConvNeXtMoE` arguments (``arch``,
            ``drop_path_rate``, ``out_indices``, ``init_cfg`` ...).
    """

    # The adapters are new: a ConvNeXt checkpoint does not have them.
    fresh_keys = ConvNeXtMoE.fresh_keys + r'|^domain_attention\.'

    def __init__(self,
                 da_blocks: Union[Sequence[Sequence[int]], str, None] = None,
                 num_domains: int = 3,
                 reduction: int = 16,
                 moe_blocks: Sequence[Sequence[int]] = (),
                 **kwargs):
        super().__init__(moe_blocks=moe_blocks, **kwargs)
        self.da_blocks = self._check_da_blocks(da_blocks)
        # Outside `stages`, so ConvNeXt checkpoints keep their key names.
        self.domain_attention = ModuleDict()
        for stage, blocks in enumerate(self.da_blocks):
            for block in blocks:
                self.domain_attention[self._adapter_name(stage, block)] = \
                    DomainAttentionAdapter(self.channels[stage], num_domains,
                                           reduction)

    @staticmethod
    def _adapter_name(stage: int, block: int) -> str:
        return f'stage{stage}_block{block}'

    def _check_da_blocks(self, da_blocks) -> list:
        """Validate the placement; None and 'all' give the named ones."""
        if da_blocks is None:
            return [[depth - 1] for depth in self.depths]
        if da_blocks == 'all':
            return [list(range(depth)) for depth in self.depths]
        return self.check_block_lists(self.depths, da_blocks, 'da_blocks')

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        """``(B, 3, H, W)`` images -> features of ``out_indices``, each
        ``(B, C_i, H / 2^(i+2), W / 2^(i+2))``."""
        outs = []
        for stage, (downsample, blocks) in enumerate(
                zip(self.downsample_layers, self.stages)):
            x = downsample(x)
            for index, block in enumerate(blocks):
                x = block(x)
                if index in self.da_blocks[stage]:
                    x = self.domain_attention[self._adapter_name(stage,
                                                                 index)](
                                                                     x)
            if stage in self.out_indices:
                outs.append(getattr(self, f'norm{stage}')(x))
        return tuple(outs)
