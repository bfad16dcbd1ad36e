"""ConvNeXt with grid-level sparse MoE blocks (SM3Det's shared backbone).

A ConvNeXt (Liu et al., 2022) in which chosen blocks replace their MLP by a
:class:`~sm3det.models.layers.GridMoE` whose experts are copies of that MLP.
With no MoE block it is exactly the dense ConvNeXt, and it loads ImageNet
ConvNeXt checkpoints in the official (facebookresearch) and the mmpretrain
key formats; each GridMoE copies its block's pretrained MLP into all its
experts as it loads (a ``load_state_dict`` pre-hook of the layer), so a
freshly loaded MoE backbone computes what the dense pretrained one computes.
MoE placement, layer building and checkpoint loading are those of every
MoE backbone (:mod:`.moe_backbone`); MoE bookkeeping (balance loss, routing
records) is generic: :mod:`sm3det.models.layers.moe_utils`.

Stages are numbered from 0 in code: the paper's "stages 2-4" are 1, 2, 3.
"""
import logging
import re
from typing import Dict, Optional, Sequence, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.utils.checkpoint as checkpoint
from mmcv.cnn import build_norm_layer
from mmcv.cnn.bricks import DropPath
from mmengine.logging import print_log
from mmrotate.registry import MODELS

from ..layers import StackedLinear
from .moe_backbone import (MoEBackbone, build_moe, rename_keys,
                           stage_drop_path_rates)

ARCH_SETTINGS = {
    # Test/mini-config size: stage 2 mixes MoE and dense blocks by default.
    'mini': dict(depths=(1, 1, 3, 1), channels=(32, 64, 128, 256)),
    'tiny': dict(depths=(3, 3, 9, 3), channels=(96, 192, 384, 768)),
    'small': dict(depths=(3, 3, 27, 3), channels=(96, 192, 384, 768)),
    'base': dict(depths=(3, 3, 27, 3), channels=(128, 256, 512, 1024)),
    'large': dict(depths=(3, 3, 27, 3), channels=(192, 384, 768, 1536)),
}


class LayerNorm2d(nn.LayerNorm):
    """LayerNorm over the channels of a ``(B, C, H, W)`` tensor."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.permute(0, 2, 3, 1)
        x = F.layer_norm(x, self.normalized_shape, self.weight, self.bias,
                         self.eps)
        # Contiguous NCHW, as mmpretrain's: convs keep a permuted layout to
        # the FPN, and mmcv's DeformConv2d (S2A-Net's AlignConv) refuses it.
        return x.permute(0, 3, 1, 2).contiguous()


@MODELS.register_module()
class ConvNeXtMLP(nn.Module):
    """ConvNeXt's point-wise MLP on channels-last tokens: C -> rC -> C.

    The two 1x1 convs are linear layers on ``(..., C)`` tensors; this is the
    dense block's MLP and one expert of an MoE block.

    Args:
        in_channels (int): ``C``.
        mlp_ratio (float): Hidden expansion ``r``. Defaults to 4.
    """

    def __init__(self, in_channels: int, mlp_ratio: float = 4.):
        super().__init__()
        hidden_channels = int(in_channels * mlp_ratio)
        self.fc1 = nn.Linear(in_channels, hidden_channels)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden_channels, in_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(..., C) -> (..., C)``."""
        return self.fc2(self.act(self.fc1(x)))


class ConvNeXtBlock(nn.Module):
    """depthwise 7x7 conv -> LayerNorm -> MLP or MoE -> layer scale -> +x.

    Args:
        channels (int): ``C``.
        drop_path_rate (float): Stochastic depth of the residual branch.
        layer_scale_init_value (float): Initial per-channel branch scale.
        mlp_ratio (float): Hidden expansion of the MLP (of every expert).
        moe_cfg (dict, optional): GridMoE arguments (``num_experts``,
            ``top_k``, ...); None gives the dense block.
        with_cp (bool): Recompute the block in backward to save memory.
    """

    def __init__(self,
                 channels: int,
                 drop_path_rate: float = 0.,
                 layer_scale_init_value: float = 1e-6,
                 mlp_ratio: float = 4.,
                 moe_cfg: Optional[dict] = None,
                 with_cp: bool = False):
        super().__init__()
        self.with_cp = with_cp
        self.depthwise_conv = nn.Conv2d(
            channels, channels, kernel_size=7, padding=3, groups=channels)
        self.norm = nn.LayerNorm(channels, eps=1e-6)
        mlp_cfg = dict(  # scoped: the caller may build under mmdet's scope
            type='ConvNeXtMLP',
            _scope_='mmrotate',
            in_channels=channels,
            mlp_ratio=mlp_ratio)
        self.mlp = MODELS.build(mlp_cfg) if moe_cfg is None else build_moe(
            mlp_cfg, moe_cfg)
        self.layer_scale = nn.Parameter(
            torch.full((channels, ), layer_scale_init_value))
        self.drop_path = DropPath(
            drop_path_rate) if drop_path_rate > 0 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C, H, W) -> (B, C, H, W)``."""
        if self.with_cp and x.requires_grad:
            # Non-reentrant: the MoE balance loss made inside keeps its graph;
            # the saved RNG state replays the same gating noise and drop path.
            return checkpoint.checkpoint(self._forward, x, use_reentrant=False)
        return self._forward(x)

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        branch = self.depthwise_conv(x).permute(0, 2, 3, 1)
        branch = self.mlp(self.norm(branch)) * self.layer_scale
        return x + self.drop_path(branch.permute(0, 3, 1, 2))


@MODELS.register_module()
class ConvNeXtMoE(MoEBackbone):
    """ConvNeXt backbone whose chosen blocks use a grid-level sparse MoE.

    Args:
        arch (str | dict): ``'mini'`` (depths 1/1/3/1, channels
            32/64/128/256, for tests and mini configs), ``'tiny'``,
            ``'small'``, ``'base'``, ``'large'``, or a dict with ``depths``
            and ``channels``.
        in_channels (int): Image channels. Defaults to 3.
        drop_path_rate (float): Stochastic depth, rising linearly over the
            blocks from 0 to this value. Defaults to 0.1.
        layer_scale_init_value (float): Defaults to 1e-6.
        out_indices (Sequence[int]): Stages to output, each after its own
            LayerNorm. Defaults to (0, 1, 2, 3): C2..C5, strides 4..32.
        stem_norm_cfg (dict, optional): mmcv norm config for the two norms
            that see the patch embedding directly: the stem's and C2's
            output norm. None (default): ConvNeXt's LayerNorm over the
            channels of each location. With the zero-bias init that norm
            makes each 4x4 patch's embedding blind to the patch's contrast,
            which a model trained from scratch on a short budget does not
            recover; ``dict(type='GN', num_groups=1)`` normalises over the
            whole map instead and keeps it (the SOI-Det-mini configs).
        frozen_stages (int): Freeze the first ``frozen_stages`` stages with
            their downsampling layers (0: nothing). Defaults to 0.
        moe_blocks (Sequence[Sequence[int]], optional): Per-stage indices of
            the blocks that get an MoE, e.g. ``[[], [0, 2], [0, 2, 4, 6, 8],
            [0, 2]]``. None (default): the even blocks of stages 1-3
            (0-based), SM3Det's placement; ``[]`` or all-empty lists: dense.
        moe_cfg (dict): GridMoE arguments shared by all MoE blocks.
            Defaults to ``dict(num_experts=8, top_k=2)``.
        with_cp (bool): Gradient checkpointing per block. Defaults to False.
        init_cfg (dict, optional): ``dict(type='Pretrained',
            checkpoint=PATH_OR_URL, prefix=None)`` loads a ConvNeXt
            checkpoint (see :meth:`keys_to_dense`); otherwise
            truncated-normal init (std 0.02) as in ConvNeXt.
    """

    arch_settings = ARCH_SETTINGS
    # A ConvNeXt classification checkpoint has no output norms 0-2 either.
    fresh_keys = MoEBackbone.fresh_keys + r'|^norm\d\.'

    def __init__(self,
                 arch: Union[str, dict] = 'tiny',
                 in_channels: int = 3,
                 drop_path_rate: float = 0.1,
                 layer_scale_init_value: float = 1e-6,
                 out_indices: Sequence[int] = (0, 1, 2, 3),
                 stem_norm_cfg: Optional[dict] = None,
                 frozen_stages: int = 0,
                 moe_blocks: Optional[Sequence[Sequence[int]]] = None,
                 moe_cfg: dict = dict(num_experts=8, top_k=2),
                 with_cp: bool = False,
                 init_cfg: Optional[dict] = None):
        super().__init__(init_cfg=init_cfg)
        arch = self.resolve_arch(arch)
        self.depths = tuple(arch['depths'])
        self.channels = tuple(arch['channels'])
        num_stages = len(self.depths)
        if len(self.channels) != num_stages:
            raise ValueError(f'ConvNeXt depths {self.depths} and channels '
                             f'{self.channels} differ in length')
        self.out_indices = self.check_out_indices(out_indices, num_stages)
        self.frozen_stages = frozen_stages
        self.moe_blocks = self.resolve_moe_blocks(self.depths, moe_blocks)

        self.downsample_layers = nn.ModuleList([
            nn.Sequential(
                nn.Conv2d(in_channels, self.channels[0], 4, stride=4),
                self._stem_norm(stem_norm_cfg))
        ] + [
            nn.Sequential(
                LayerNorm2d(self.channels[i - 1], eps=1e-6),
                nn.Conv2d(self.channels[i - 1], self.channels[i], 2, stride=2))
            for i in range(1, num_stages)
        ])
        drop_path_rates = stage_drop_path_rates(self.depths, drop_path_rate)
        self.stages = nn.ModuleList()
        for stage, (depth,
                    channels) in enumerate(zip(self.depths, self.channels)):
            self.stages.append(
                nn.Sequential(*[
                    ConvNeXtBlock(
                        channels,
                        drop_path_rate=drop_path_rates[stage][block],
                        layer_scale_init_value=layer_scale_init_value,
                        moe_cfg=moe_cfg if block in
                        self.moe_blocks[stage] else None,
                        with_cp=with_cp) for block in range(depth)
                ]))
        for stage in self.out_indices:
            self.add_module(
                f'norm{stage}',
                self._stem_norm(stem_norm_cfg) if stage == 0 else LayerNorm2d(
                    self.channels[stage], eps=1e-6))
        self._freeze_stages()

    def _stem_norm(self, norm_cfg: Optional[dict]) -> nn.Module:
        """A norm over stage 0's channels: LayerNorm2d, or ``norm_cfg``."""
        if norm_cfg is None:
            return LayerNorm2d(self.channels[0], eps=1e-6)
        return build_norm_layer(norm_cfg, self.channels[0])[1]

    def forward(self, x: torch.Tensor) -> tuple:
        """``(B, 3, H, W)`` images -> features of ``out_indices``, each
        ``(B, C_i, H / 2^(i+2), W / 2^(i+2))``."""
        outs = []
        for stage, (downsample, blocks) in enumerate(
                zip(self.downsample_layers, self.stages)):
            x = blocks(downsample(x))
            if stage in self.out_indices:
                outs.append(getattr(self, f'norm{stage}')(x))
        return tuple(outs)

    # ------------------------------------------------------ initialisation
    def init_random_weights(self) -> None:
        """ConvNeXt's truncated-normal init (std 0.02), gates their own."""
        for m in self.modules():
            # StackedLinear: the experts' linear layers, (N, C_out, C_in).
            if isinstance(m, (nn.Conv2d, nn.Linear, StackedLinear)):
                nn.init.trunc_normal_(m.weight, std=.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, (nn.LayerNorm, nn.GroupNorm)):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        self.reset_gate_parameters()

    @staticmethod
    def keys_to_dense(
            state_dict: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
        """Rename a ConvNeXt checkpoint to the names of a dense ConvNeXtMoE.

        Accepts the official format (``downsample_layers.i.*``,
        ``stages.i.j.dwconv/norm/pwconv1/pwconv2/gamma``, ``norm.*``,
        ``head.*``), the mmpretrain format (``depthwise_conv``,
        ``pointwise_conv1/2`` as linear or 1x1 conv, ``norm3``,
        ``head.fc.*``) and this module's own names. Classification heads are
        dropped; the official classifier's final ``norm`` becomes
        ``norm3``.
        """
        state_dict = rename_keys(state_dict, [
            (r'^norm\.', 'norm3.'),
            (r'\.(dwconv|depthwise_conv)\.', '.depthwise_conv.'),
            (r'\.(pwconv1|pointwise_conv1)\.', '.mlp.fc1.'),
            (r'\.(pwconv2|pointwise_conv2)\.', '.mlp.fc2.'),
            (r'\.gamma$', '.layer_scale'),
        ])
        for key, value in state_dict.items():
            if value.dim() == 4 and re.search(r'\.mlp\.fc\d\.weight$', key):
                state_dict[key] = value.flatten(1)  # 1x1 conv -> linear
        return state_dict

    def load_pretrained(self,
                        checkpoint: str,
                        prefix: Optional[str] = None) -> None:
        """:meth:`MoEBackbone.load_pretrained`, after a warning when the
        stem norm is not the LayerNorm that ConvNeXt checkpoints have."""
        stem_norm = self.downsample_layers[0][1]
        if not isinstance(stem_norm, LayerNorm2d):
            print_log(
                'ConvNeXtMoE: a ConvNeXt checkpoint was trained with '
                'LayerNorm after the stem; its weights now go into '
                f'{type(stem_norm).__name__} (stem_norm_cfg)',
                logger='current',
                level=logging.WARNING)
        super().load_pretrained(checkpoint, prefix)

    # ------------------------------------------------------------ freezing
    def _freeze_stages(self) -> None:
        for stage in range(self.frozen_stages):
            for module in (self.downsample_layers[stage], self.stages[stage]):
                module.eval()
                for param in module.parameters():
                    param.requires_grad = False

    def train(self, mode: bool = True) -> 'ConvNeXtMoE':
        super().train(mode)
        self._freeze_stages()
        return self
