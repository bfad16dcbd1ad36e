"""LSKNet with grid-level sparse MoE MLPs (SM3Det's LSKNet-T/S/B).

LSKNet (Li et al., 2023, "Large Selective Kernel Network for Remote Sensing
Object Detection") is VAN (:mod:`.van_moe`) with the large-kernel attention
replaced by the LSK module; stages, MLP, MoE placement and checkpoint
handling are VAN's. Its checkpoints (official, and mmrotate's LSKNet
project, which keeps the official names) load through
:meth:`~.van_moe.VANMoE.keys_to_dense`.
"""
import torch
import torch.nn as nn
from mmrotate.registry import MODELS

from .van_moe import VANMoE, large_kernel_convs


class LSKAttention(nn.Module):
    """LSK module: two depthwise convs in a row (5x5, then 7x7 with dilation
    3) give a small and a large receptive field; a spatial selection mask,
    from the channel-mean and channel-max of both, weighs them per position.
    ``(B, C, H, W) -> (B, C, H, W)``."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv0, self.conv_spatial = large_kernel_convs(channels)
        self.conv1 = nn.Conv2d(channels, channels // 2, 1)
        self.conv2 = nn.Conv2d(channels, channels // 2, 1)
        self.conv_squeeze = nn.Conv2d(2, 2, 7, padding=3)
        self.conv = nn.Conv2d(channels // 2, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        small = self.conv0(x)
        large = self.conv_spatial(small)
        small, large = self.conv1(small), self.conv2(large)
        both = torch.cat([small, large], dim=1)
        pooled = torch.cat(
            [both.mean(dim=1, keepdim=True),
             both.amax(dim=1, keepdim=True)],
            dim=1)
        mask = self.conv_squeeze(pooled).sigmoid()
        return x * self.conv(small * mask[:, :1] + large * mask[:, 1:])


@MODELS.register_module()
class LSKNetMoE(VANMoE):
    """LSKNet backbone whose chosen blocks have a grid-level MoE MLP.

    Arguments as :class:`~.van_moe.VANMoE`; ``arch`` ``'tiny'`` and
    ``'small'`` are LSKNet-T and -S, ``'base'`` the VAN-B-sized LSKNet-B of
    the SM3Det paper.
    """

    gating_unit = LSKAttention
