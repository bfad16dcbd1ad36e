"""VAN with grid-level sparse MoE MLPs (SM3Det's VAN-T/S/B backbones).

VAN (Guo et al., 2022, "Visual Attention Network"): four stages of
overlapping patch embedding + blocks of ``BN -> large-kernel attention`` and
``BN -> MLP`` (1x1 conv -> 3x3 depthwise conv -> GELU -> 1x1 conv), each
branch scaled per channel and added back, then a LayerNorm per stage. In the
chosen blocks SM3Det turns the MLP's fc1 and fc2 each into a GridMoE of
single 1x1-conv experts; the depthwise conv between them stays shared. Every
expert starts as the pretrained conv, so a freshly loaded MoE backbone
computes what the dense VAN computes.

Written here because VAN is in mmpretrain only, which this stack does not
install. LSKNet (:mod:`.lsknet_moe`) is this network with another attention.
Module names are those of the official VAN checkpoints (``patch_embed1``,
``block1.0.attn.spatial_gating_unit.conv0``, ``block1.0.mlp.fc1``,
``norm1``, ...), except the MLP's depthwise conv: ``mlp.dwconv``.
"""
import math
from typing import Dict, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
from mmcv.cnn import build_norm_layer
from mmcv.cnn.bricks import DropPath
from mmrotate.registry import MODELS

from .moe_backbone import (MoEBackbone, pointwise_conv, rename_keys,
                           stage_drop_path_rates)

# VAN-T/S/B are VAN-b0/b1/b2; LSKNet-T/S/B have the same stages. 'mini' is
# the CPU size of the SOI-Det-mini configs.
ARCH_SETTINGS = {
    'mini': dict(depths=(1, 1, 2, 1), channels=(32, 64, 128, 256)),
    'tiny': dict(depths=(3, 3, 5, 2), channels=(32, 64, 160, 256)),
    'small': dict(depths=(2, 2, 4, 2), channels=(64, 128, 320, 512)),
    'base': dict(depths=(3, 3, 12, 3), channels=(64, 128, 320, 512)),
}
MLP_RATIOS = (8, 8, 4, 4)


def large_kernel_convs(channels: int) -> Tuple[nn.Conv2d, nn.Conv2d]:
    """VAN's decomposed large kernel, two depthwise convs in a row: 5x5,
    then 7x7 with dilation 3 (together 23x23); both keep the map's size."""
    return (nn.Conv2d(channels, channels, 5, padding=2, groups=channels),
            nn.Conv2d(
                channels, channels, 7, padding=9, groups=channels, dilation=3))


class LargeKernelAttention(nn.Module):
    """VAN's LKA: 5x5 depthwise -> 7x7 depthwise (dilation 3) -> 1x1 conv,
    multiplied into the input. ``(B, C, H, W) -> (B, C, H, W)``."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv0, self.conv_spatial = large_kernel_convs(channels)
        self.conv1 = nn.Conv2d(channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.conv1(self.conv_spatial(self.conv0(x)))


class SpatialAttention(nn.Module):
    """1x1 conv -> GELU -> gating unit (LKA or LSK) -> 1x1 conv, plus the
    input. ``(B, C, H, W) -> (B, C, H, W)``."""

    def __init__(self, channels: int, gating_unit: nn.Module):
        super().__init__()
        self.proj_1 = nn.Conv2d(channels, channels, 1)
        self.activation = nn.GELU()
        self.spatial_gating_unit = gating_unit
        self.proj_2 = nn.Conv2d(channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        branch = self.spatial_gating_unit(self.activation(self.proj_1(x)))
        return x + self.proj_2(branch)


class MixMLP(nn.Module):
    """fc1 (1x1) -> 3x3 depthwise conv -> GELU -> dropout -> fc2 (1x1) ->
    dropout; fc1 and fc2 are GridMoE layers when ``moe_cfg`` is given.
    ``(B, C, H, W) -> (B, C, H, W)``."""

    def __init__(self,
                 channels: int,
                 hidden_channels: int,
                 drop_rate: float = 0.,
                 moe_cfg: Optional[dict] = None):
        super().__init__()
        self.fc1 = pointwise_conv(channels, hidden_channels, moe_cfg)
        self.dwconv = nn.Conv2d(
            hidden_channels,
            hidden_channels,
            3,
            padding=1,
            groups=hidden_channels)
        self.act = nn.GELU()
        self.fc2 = pointwise_conv(hidden_channels, channels, moe_cfg)
        self.drop = nn.Dropout(drop_rate)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.drop(self.act(self.dwconv(self.fc1(x))))
        return self.drop(self.fc2(x))


class VANBlock(nn.Module):
    """``x + s1 * attn(norm1(x))``, then ``x + s2 * mlp(norm2(x))``.

    Args:
        channels (int): ``C``.
        gating_unit (nn.Module): The attention's spatial gating unit.
        mlp_ratio (float): Hidden expansion of the MLP.
        drop_rate (float): Dropout in the MLP.
        drop_path_rate (float): Stochastic depth of both branches.
        norm_cfg (dict): mmcv norm config of norm1 / norm2.
        moe_cfg (dict, optional): GridMoE arguments for fc1 and fc2; None:
            the dense block.
    """

    def __init__(self,
                 channels: int,
                 gating_unit: nn.Module,
                 mlp_ratio: float,
                 drop_rate: float = 0.,
                 drop_path_rate: float = 0.,
                 norm_cfg: dict = dict(type='BN'),
                 moe_cfg: Optional[dict] = None):
        super().__init__()
        self.norm1 = build_norm_layer(norm_cfg, channels)[1]
        self.attn = SpatialAttention(channels, gating_unit)
        self.norm2 = build_norm_layer(norm_cfg, channels)[1]
        self.mlp = MixMLP(channels, int(channels * mlp_ratio), drop_rate,
                          moe_cfg)
        self.layer_scale_1 = nn.Parameter(torch.full((channels, ), 1e-2))
        self.layer_scale_2 = nn.Parameter(torch.full((channels, ), 1e-2))
        self.drop_path = DropPath(
            drop_path_rate) if drop_path_rate > 0 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C, H, W) -> (B, C, H, W)``."""
        x = x + self.drop_path(
            self.layer_scale_1[:, None, None] * self.attn(self.norm1(x)))
        return x + self.drop_path(
            self.layer_scale_2[:, None, None] * self.mlp(self.norm2(x)))


class OverlapPatchEmbed(nn.Module):
    """Strided conv (kernel ``k``, padding ``k // 2``) + norm."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int,
                 stride: int, norm_cfg: dict):
        super().__init__()
        self.proj = nn.Conv2d(
            in_channels,
            out_channels,
            kernel_size,
            stride=stride,
            padding=kernel_size // 2)
        self.norm = build_norm_layer(norm_cfg, out_channels)[1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(self.proj(x))


@MODELS.register_module()
class VANMoE(MoEBackbone):
    """VAN backbone whose chosen blocks have a grid-level MoE MLP.

    Args:
        arch (str | dict): ``'mini'``, ``'tiny'``, ``'small'``, ``'base'``
            (VAN-b0/b1/b2) or a dict with ``depths`` and ``channels``.
        in_channels (int): Image channels. Defaults to 3.
        drop_rate (float): Dropout in the MLPs. Defaults to 0.
        drop_path_rate (float): Stochastic depth, rising linearly over the
            blocks from 0 to this value. Defaults to 0.1.
        out_indices (Sequence[int]): Stages to output. Defaults to
            (0, 1, 2, 3): C2..C5, strides 4..32.
        norm_cfg (dict): mmcv norm config of the patch embeddings and the
            blocks. Defaults to ``dict(type='BN')`` (``SyncBN`` on several
            GPUs, as the paper's configs).
        moe_blocks (Sequence[Sequence[int]], optional): Per-stage indices of
            the blocks whose fc1 and fc2 become MoE layers. None (default):
            the even blocks of stages 1-3 (0-based), SM3Det's placement;
            ``[]``: the dense VAN.
        moe_cfg (dict): GridMoE arguments of every MoE layer. Defaults to
            ``dict(num_experts=4, top_k=2)``.
        init_cfg (dict, optional): ``dict(type='Pretrained',
            checkpoint=PATH_OR_URL, prefix=None)`` loads an ImageNet
            checkpoint (see :meth:`keys_to_dense`); otherwise VAN's random
            init.
    """

    arch_settings = ARCH_SETTINGS
    #: The attention's gating unit, built as ``gating_unit(channels)``.
    gating_unit = LargeKernelAttention

    def __init__(self,
                 arch: Union[str, dict] = 'tiny',
                 in_channels: int = 3,
                 drop_rate: float = 0.,
                 drop_path_rate: float = 0.1,
                 out_indices: Sequence[int] = (0, 1, 2, 3),
                 norm_cfg: dict = dict(type='BN'),
                 moe_blocks: Optional[Sequence[Sequence[int]]] = None,
                 moe_cfg: dict = dict(num_experts=4, top_k=2),
                 init_cfg: Optional[dict] = None):
        super().__init__(init_cfg=init_cfg)
        arch = self.resolve_arch(arch)
        self.depths = tuple(arch['depths'])
        self.channels = tuple(arch['channels'])
        if len(self.depths) != len(MLP_RATIOS) or len(
                self.channels) != len(MLP_RATIOS):
            raise ValueError(f'{type(self).__name__} needs 4 depths and 4 '
                             f'channels, got {self.depths}, {self.channels}')
        self.out_indices = self.check_out_indices(out_indices,
                                                  len(self.depths))
        self.moe_blocks = self.resolve_moe_blocks(self.depths, moe_blocks)

        drop_path_rates = stage_drop_path_rates(self.depths, drop_path_rate)
        for stage, (depth,
                    channels) in enumerate(zip(self.depths, self.channels)):
            self.add_module(
                f'patch_embed{stage + 1}',
                OverlapPatchEmbed(
                    in_channels if stage == 0 else self.channels[stage - 1],
                    channels,
                    kernel_size=7 if stage == 0 else 3,
                    stride=4 if stage == 0 else 2,
                    norm_cfg=norm_cfg))
            self.add_module(
                f'block{stage + 1}',
                nn.Sequential(*[
                    VANBlock(
                        channels,
                        self.gating_unit(channels),
                        MLP_RATIOS[stage],
                        drop_rate=drop_rate,
                        drop_path_rate=drop_path_rates[stage][block],
                        norm_cfg=norm_cfg,
                        moe_cfg=moe_cfg if block in
                        self.moe_blocks[stage] else None)
                    for block in range(depth)
                ]))
            self.add_module(f'norm{stage + 1}',
                            nn.LayerNorm(channels, eps=1e-6))

    def forward(self, x: torch.Tensor) -> tuple:
        """``(B, 3, H, W)`` images -> features of ``out_indices``, each
        ``(B, C_i, H / 2^(i+2), W / 2^(i+2))``."""
        outs = []
        for stage in range(len(self.depths)):
            x = getattr(self, f'patch_embed{stage + 1}')(x)
            x = getattr(self, f'block{stage + 1}')(x)
            norm = getattr(self, f'norm{stage + 1}')
            x = norm(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)
            if stage in self.out_indices:
                outs.append(x)
        return tuple(outs)

    def init_random_weights(self) -> None:
        """VAN's random init; the MoE layers keep their own."""
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                fan_out = m.kernel_size[0] * m.kernel_size[1] * (
                    m.out_channels // m.groups)
                nn.init.normal_(m.weight, 0, math.sqrt(2.0 / fan_out))
                nn.init.zeros_(m.bias)
            elif isinstance(m, (nn.LayerNorm, nn.BatchNorm2d, nn.SyncBatchNorm,
                                nn.GroupNorm)):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    @staticmethod
    def keys_to_dense(
            state_dict: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
        """Rename a VAN / LSKNet checkpoint to this module's names.

        Accepts the official format (VAN-Classification, LSKNet; also what
        mmrotate's LSKNet project saves: ``block1.0.mlp.dwconv.dwconv``),
        the mmpretrain format (``patch_embed1.projection``, ``blocks1``,
        ``DW_conv``, ``DW_D_conv``, ``mlp.dwconv``) and this module's own
        names. Classifier keys (``head.*``) are dropped.
        """
        return rename_keys(state_dict, [
            (r'^blocks(\d)\.', r'block\1.'),
            (r'^(patch_embed\d)\.projection\.', r'\1.proj.'),
            (r'\.DW_conv\.', '.conv0.'),
            (r'\.DW_D_conv\.', '.conv_spatial.'),
            (r'\.mlp\.dwconv\.dwconv\.', '.mlp.dwconv.'),
        ])
