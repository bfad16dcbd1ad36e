"""Parts that the VAN, LSKNet and PVT-v2 MoE backbones share.

- :func:`pointwise_conv`: a 1x1 conv of a channels-first MLP, dense or as a
  :class:`~sm3det.models.layers.GridMoE` of single 1x1-conv experts. The MoE
  takes the dense conv's place (same module name), so its load_state_dict
  pre-hook finds the dense ``weight`` / ``bias`` of a pretrained checkpoint
  at its prefix and copies them into every expert: a freshly loaded MoE
  backbone computes what the dense pretrained one computes.
- :func:`resolve_moe_blocks`: the per-stage MoE placement, checked.
- :func:`load_pretrained`: an ImageNet (or detector) checkpoint, renamed to
  the backbone's dense module names by a per-backbone function.
"""
import logging
import re
from typing import Callable, Dict, List, Optional, Sequence

import torch
import torch.nn as nn
from mmengine.logging import print_log
from mmengine.runner.checkpoint import CheckpointLoader

from ..layers import GridMoE
from .convnext_moe import even_block_indices

# Parameters that no dense checkpoint has: the MoE gates.
GATE_KEYS = r'\.(router|noise_proj)\.'


class ChannelsFirstGridMoE(GridMoE):
    """GridMoE on ``(B, C, H, W)`` maps: each position is a token."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C, H, W) -> (B, C_out, H, W)``."""
        return super().forward(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


def pointwise_conv(in_channels: int,
                   out_channels: int,
                   moe_cfg: Optional[dict] = None) -> nn.Module:
    """A 1x1 conv ``(B, C_in, H, W) -> (B, C_out, H, W)`` with bias.

    Args:
        in_channels, out_channels: ``C_in``, ``C_out``.
        moe_cfg: GridMoE arguments (``num_experts``, ``top_k``, ...); None
            gives the dense ``nn.Conv2d``.
    """
    if moe_cfg is None:
        return nn.Conv2d(in_channels, out_channels, kernel_size=1)
    expert_cfg = dict(
        type='PointwiseConv',
        in_channels=in_channels,
        out_channels=out_channels)
    return ChannelsFirstGridMoE(
        in_channels=in_channels, expert_cfg=expert_cfg, **moe_cfg)


def resolve_moe_blocks(depths: Sequence[int],
                       moe_blocks: Optional[Sequence[Sequence[int]]],
                       owner: str) -> List[List[int]]:
    """Per-stage indices of the MoE blocks, sorted.

    Args:
        depths: Blocks per stage.
        moe_blocks: One list per stage; None gives SM3Det's rule, the even
            blocks of the paper's stages 2-4 (0-based 1-3); ``[]``: dense.
        owner: The backbone's name, for the error message.

    Raises:
        ValueError: not one list per stage, or an index outside its stage.
    """
    if moe_blocks is None:
        return even_block_indices(depths)
    if len(moe_blocks) == 0:
        return [[] for _ in depths]
    if isinstance(moe_blocks, str) or len(moe_blocks) != len(depths):
        raise ValueError(f'{owner}: moe_blocks needs one list per stage '
                         f'({len(depths)}), got {moe_blocks}')
    for stage, (blocks, depth) in enumerate(zip(moe_blocks, depths)):
        if not all(0 <= block < depth for block in blocks):
            raise ValueError(f'{owner}: moe_blocks[{stage}]={list(blocks)} '
                             f'outside the {depth} blocks of stage {stage}')
    return [sorted(blocks) for blocks in moe_blocks]


def is_pretrained(init_cfg: Optional[dict], owner: str) -> bool:
    """Whether ``init_cfg`` asks for a checkpoint; None: random init.

    Raises:
        ValueError: any other init_cfg.
    """
    if not init_cfg:
        return False
    if isinstance(init_cfg, dict) and init_cfg.get(
            'type') == 'Pretrained' and init_cfg.get('checkpoint'):
        return True
    raise ValueError(f"{owner} supports init_cfg=dict(type='Pretrained', "
                     f'checkpoint=PATH_OR_URL, prefix=None) only, got '
                     f'{init_cfg}')


def read_state_dict(checkpoint: str,
                    prefix: Optional[str] = None) -> Dict[str, torch.Tensor]:
    """The backbone's tensors of a checkpoint file or URL.

    Takes ``state_dict`` or ``model`` if the file has one; keeps only the
    keys under ``prefix`` (stripped) when given, else only those under
    ``backbone.`` when there are any (a detector or mmpretrain checkpoint).

    Raises:
        ValueError: no key starts with ``prefix`` (names the file).
    """
    ckpt = CheckpointLoader.load_checkpoint(checkpoint, map_location='cpu')
    state_dict = ckpt.get('state_dict', ckpt.get('model', ckpt))
    if prefix is None and any(k.startswith('backbone.') for k in state_dict):
        prefix = 'backbone.'
    if prefix:
        state_dict = {
            k[len(prefix):]: v
            for k, v in state_dict.items() if k.startswith(prefix)
        }
        if not state_dict:
            raise ValueError(f'No key of checkpoint {checkpoint} starts with '
                             f'prefix {prefix!r}')
    return state_dict


def load_pretrained(backbone: nn.Module, init_cfg: dict,
                    to_dense_keys: Callable[[dict], dict]) -> None:
    """Load ``init_cfg['checkpoint']`` into ``backbone``.

    Args:
        backbone: The (MoE) backbone; each GridMoE copies the dense layer of
            its place into all its experts as it loads.
        init_cfg: ``dict(type='Pretrained', checkpoint=..., prefix=None)``.
        to_dense_keys: Renames the checkpoint's keys to the dense backbone's
            module names and drops what the backbone has not (classifier).

    Raises:
        ValueError: no tensor of the checkpoint fits the backbone.
        RuntimeError: a tensor of the wrong shape (torch names the key).
    """
    owner = type(backbone).__name__
    checkpoint = init_cfg['checkpoint']
    state_dict = to_dense_keys(
        read_state_dict(checkpoint, init_cfg.get('prefix')))
    missing, unexpected = backbone.load_state_dict(state_dict, strict=False)
    if len(unexpected) == len(state_dict):
        raise ValueError(f'{owner}: no key of checkpoint {checkpoint} is a '
                         f'{owner} key (first keys: {list(state_dict)[:5]})')
    fresh = [k for k in missing if re.search(GATE_KEYS, k)]
    missing = [k for k in missing if k not in fresh]
    print_log(
        f'{owner}: loaded {checkpoint}; {len(fresh)} gate tensors '
        'keep their init',
        logger='current',
        level=logging.INFO)
    if missing or unexpected:
        print_log(
            f'{owner} checkpoint {checkpoint}: missing keys {missing}, '
            f'unexpected keys {unexpected}',
            logger='current',
            level=logging.WARNING)
