"""The base of SM3Det's MoE backbones (ConvNeXt, VAN, LSKNet, PVT-v2).

A backbone is an :class:`MoEBackbone` that names its sizes
(``arch_settings``), renames a dense checkpoint's keys to its own
(``keys_to_dense``), draws its random init (``init_random_weights``) and
builds its layers with what this module gives it:

- where the MoE layers go: :func:`even_block_indices` (SM3Det's rule) or a
  configured placement, checked (:meth:`MoEBackbone.resolve_moe_blocks`);
- the MoE layers: :func:`build_moe` (a GridMoE of copies of one expert) and
  :func:`pointwise_conv` (a 1x1 conv, dense or as an MoE of 1x1 convs). An
  MoE layer takes its dense counterpart's place (same module name), so its
  load_state_dict pre-hook finds the dense weights of a pretrained
  checkpoint at its prefix and copies them into every expert: a freshly
  loaded MoE backbone computes what the dense pretrained one computes;
- the pretrained init: :meth:`MoEBackbone.init_weights` reads the
  checkpoint of ``init_cfg`` (:func:`read_state_dict`), renames its keys and
  loads it (:meth:`MoEBackbone.load_pretrained`).

Stages are numbered from 0 in code: the paper's "stages 2-4" are 1, 2, 3.
"""
import logging
import re
from abc import abstractmethod
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
from mmengine.logging import print_log
from mmengine.model import BaseModule
from mmengine.runner.checkpoint import CheckpointLoader

from ..layers import GridMoE, moe_layers

# SM3Det's placement: the even blocks of the paper's stages 2, 3 and 4.
DEFAULT_MOE_STAGES = (1, 2, 3)


def even_block_indices(depths: Sequence[int],
                       stages: Sequence[int] = DEFAULT_MOE_STAGES) -> list:
    """Per-stage MoE block indices: blocks 0, 2, 4, ... of ``stages``.

    >>> even_block_indices((3, 3, 9, 3))
    [[], [0, 2], [0, 2, 4, 6, 8], [0, 2]]
    """
    return [
        list(range(0, depth, 2)) if stage in stages else []
        for stage, depth in enumerate(depths)
    ]


def stage_drop_path_rates(depths: Sequence[int],
                          drop_path_rate: float) -> List[List[float]]:
    """Stochastic depth of each block, one list per stage: rising linearly
    over all blocks from 0 to ``drop_path_rate``."""
    num_blocks = sum(depths)
    rates = [
        drop_path_rate * i / max(num_blocks - 1, 1) for i in range(num_blocks)
    ]
    return [
        rates[sum(depths[:stage]):sum(depths[:stage + 1])]
        for stage in range(len(depths))
    ]


class ChannelsFirstGridMoE(GridMoE):
    """GridMoE on ``(B, C, H, W)`` maps: each position is a token."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C, H, W) -> (B, C_out, H, W)``."""
        return super().forward(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


def build_moe(expert_cfg: dict,
              moe_cfg: dict,
              channels_first: bool = False) -> GridMoE:
    """A GridMoE whose experts are built from ``expert_cfg``.

    Args:
        expert_cfg: One expert, on channels-last tokens; its
            ``in_channels`` is the router's input width.
        moe_cfg: GridMoE arguments (``num_experts``, ``top_k``, ...).
        channels_first: The layer takes ``(B, C, H, W)`` maps; else
            channels-last tokens ``(..., C)``.
    """
    moe_type = ChannelsFirstGridMoE if channels_first else GridMoE
    return moe_type(
        in_channels=expert_cfg['in_channels'],
        expert_cfg=expert_cfg,
        **moe_cfg)


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
    return build_moe(expert_cfg, moe_cfg, channels_first=True)


def rename_keys(state_dict: Dict[str, torch.Tensor],
                renames: Sequence[Tuple[str, str]]) -> Dict[str, torch.Tensor]:
    """``state_dict`` less its classifier (``head.*``), each key renamed by
    the ``(pattern, replacement)`` regex substitutions in order."""
    converted = {}
    for key, value in state_dict.items():
        if key.startswith('head.'):
            continue
        for pattern, replacement in renames:
            key = re.sub(pattern, replacement, key)
        converted[key] = value
    return converted


def read_state_dict(checkpoint: str,
                    prefix: Optional[str] = None) -> Dict[str, torch.Tensor]:
    """The backbone's tensors of a checkpoint file or URL.

    Takes ``state_dict`` or ``model`` if the file has one; keeps only the
    keys under ``prefix`` (stripped) when given, then only those under
    ``backbone.`` when there are any (a detector or mmpretrain checkpoint).

    Raises:
        ValueError: no key starts with ``prefix`` (names the file).
    """
    ckpt = CheckpointLoader.load_checkpoint(checkpoint, map_location='cpu')
    state_dict = ckpt.get('state_dict', ckpt.get('model', ckpt))
    if prefix:
        state_dict = _under(state_dict, prefix)
        if not state_dict:
            raise ValueError(f'No key of checkpoint {checkpoint} starts with '
                             f'prefix {prefix!r}; leave prefix out (a '
                             '"backbone." prefix is found anyway)')
    if any(key.startswith('backbone.') for key in state_dict):
        state_dict = _under(state_dict, 'backbone.')
    return state_dict


def _under(state_dict: dict, prefix: str) -> dict:
    """The entries whose key starts with ``prefix``, ``prefix`` stripped."""
    return {
        key[len(prefix):]: value
        for key, value in state_dict.items() if key.startswith(prefix)
    }


class MoEBackbone(BaseModule):
    """Base of the MoE backbones: sizes, MoE placement, pretrained init.

    A subclass sets :attr:`arch_settings`, implements :meth:`keys_to_dense`
    and :meth:`init_random_weights`, and widens :attr:`fresh_keys` by the
    parameters of its own that a dense checkpoint has not.

    Args:
        init_cfg (dict, optional): ``dict(type='Pretrained',
            checkpoint=PATH_OR_URL, prefix=None)`` loads a dense checkpoint
            after the random init; None: the random init only. Any other
            value fails at build.
        **kwargs: The arguments of the next base class (mmdet's PVT-v2).
    """

    #: Named sizes: ``arch`` name -> the backbone's size arguments.
    arch_settings: Dict[str, dict] = {}
    #: Regex of the parameters that no dense checkpoint has: the MoE gates.
    fresh_keys = r'\.(router|noise_proj)\.'

    def __init__(self, init_cfg: Optional[dict] = None, **kwargs):
        super().__init__(init_cfg=init_cfg, **kwargs)
        self.is_pretrained()  # fail at build on a bad init_cfg

    # ------------------------------------------------------------- sizes
    def resolve_arch(self, arch: Union[str, dict]) -> dict:
        """``arch_settings[arch]``; a dict ``arch`` as it is.

        Raises:
            KeyError: an unknown name.
        """
        if not isinstance(arch, str):
            return arch
        if arch not in self.arch_settings:
            raise KeyError(f'Unknown {type(self).__name__} arch {arch!r}; '
                           f'choose from {sorted(self.arch_settings)} or '
                           'pass a dict')
        return self.arch_settings[arch]

    def check_out_indices(self, out_indices: Sequence[int],
                          num_stages: int) -> Tuple[int, ...]:
        """``out_indices`` as a tuple.

        Raises:
            ValueError: an index outside ``[0, num_stages)``.
        """
        out_indices = tuple(out_indices)
        if not all(0 <= i < num_stages for i in out_indices):
            raise ValueError(f'{type(self).__name__}: out_indices '
                             f'{out_indices} must lie in [0, {num_stages})')
        return out_indices

    # --------------------------------------------------------- placement
    def resolve_moe_blocks(
            self, depths: Sequence[int],
            moe_blocks: Optional[Sequence[Sequence[int]]]) -> List[List[int]]:
        """Per-stage indices of the MoE blocks, sorted.

        Args:
            depths: Blocks per stage.
            moe_blocks: One list per stage; None gives SM3Det's rule, the
                even blocks of the paper's stages 2-4 (0-based 1-3); ``[]``:
                dense.

        Raises:
            ValueError: as :meth:`check_block_lists`.
        """
        if moe_blocks is None:
            return even_block_indices(depths)
        if len(moe_blocks) == 0:
            return [[] for _ in depths]
        return self.check_block_lists(depths, moe_blocks, 'moe_blocks')

    def check_block_lists(self, depths: Sequence[int],
                          block_lists: Sequence[Sequence[int]],
                          name: str) -> List[List[int]]:
        """``block_lists`` (block indices per stage), each list sorted.

        Args:
            depths: Blocks per stage.
            block_lists: One list per stage.
            name: Its config key, for the error message.

        Raises:
            ValueError: not one list per stage, or an index outside its
                stage.
        """
        owner = type(self).__name__
        if isinstance(block_lists, str) or len(block_lists) != len(depths):
            raise ValueError(f'{owner}: {name} needs one list per stage '
                             f'({len(depths)}), got {block_lists}')
        for stage, (blocks, depth) in enumerate(zip(block_lists, depths)):
            if not all(0 <= block < depth for block in blocks):
                raise ValueError(f'{owner}: {name}[{stage}]={list(blocks)} '
                                 f'outside the {depth} blocks of stage '
                                 f'{stage}')
        return [sorted(blocks) for blocks in block_lists]

    # ---------------------------------------------------- initialisation
    def is_pretrained(self) -> bool:
        """Whether ``init_cfg`` names a checkpoint; None: random init.

        Raises:
            ValueError: any other init_cfg.
        """
        init_cfg = self.init_cfg
        if not init_cfg:
            return False
        if isinstance(init_cfg, dict) and init_cfg.get(
                'type') == 'Pretrained' and init_cfg.get('checkpoint'):
            return True
        raise ValueError(f"{type(self).__name__} supports init_cfg=dict("
                         "type='Pretrained', checkpoint=PATH_OR_URL, "
                         f'prefix=None) only, got {init_cfg}')

    def init_weights(self) -> None:
        """:meth:`init_random_weights`, then the checkpoint of ``init_cfg``
        if it names one."""
        self.init_random_weights()
        if self.is_pretrained():
            self.load_pretrained(self.init_cfg['checkpoint'],
                                 self.init_cfg.get('prefix'))
        self._is_init = True

    @abstractmethod
    def init_random_weights(self) -> None:
        """The backbone's random init, before a checkpoint (if any) loads."""

    def reset_gate_parameters(self) -> None:
        """Redraw the gates of every MoE layer, after a generic init that
        drew their linear layers like any other."""
        for layer in moe_layers(self).values():
            layer.reset_gate_parameters()

    @staticmethod
    @abstractmethod
    def keys_to_dense(
            state_dict: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
        """Rename a checkpoint's keys (``backbone.`` prefix stripped) to the
        dense backbone's module names; drop what the backbone has not."""

    def load_pretrained(self,
                        checkpoint: str,
                        prefix: Optional[str] = None) -> None:
        """Load a dense (or MoE) checkpoint; each GridMoE copies the dense
        layer of its place into all its experts as it loads.

        Args:
            checkpoint: A path or URL (anything mmengine's CheckpointLoader
                reads).
            prefix: Keep only the keys with this prefix, stripped.

        Raises:
            ValueError: no key starts with ``prefix``, or no tensor of the
                checkpoint fits the backbone.
            RuntimeError: a tensor of the wrong shape (torch names the key).
        """
        owner = type(self).__name__
        state_dict = self.keys_to_dense(read_state_dict(checkpoint, prefix))
        missing, unexpected = self.load_state_dict(state_dict, strict=False)
        if len(unexpected) == len(state_dict):
            raise ValueError(f'{owner}: no key of checkpoint {checkpoint} is '
                             f'a {owner} key (first keys: '
                             f'{list(state_dict)[:5]})')
        # A dense checkpoint has no fresh_keys; any other key missing means
        # a wrong or partial file.
        fresh = [k for k in missing if re.search(self.fresh_keys, k)]
        missing = [k for k in missing if k not in fresh]
        print_log(
            f'{owner}: loaded {checkpoint}; {len(fresh)} tensors that a '
            'dense checkpoint has not (gates, ...) keep their init',
            logger='current',
            level=logging.INFO)
        if missing or unexpected:
            print_log(
                f'{owner} checkpoint {checkpoint}: missing keys {missing}, '
                f'unexpected keys {unexpected}',
                logger='current',
                level=logging.WARNING)
