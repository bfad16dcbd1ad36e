"""PVT-v2 with grid-level sparse MoE FFNs (SM3Det's PVT-v2-T/S/B).

mmdet's :class:`~mmdet.models.backbones.PyramidVisionTransformerV2` with
the FFN of chosen encoder layers turned into MoE layers the way VAN's MLP is
(:mod:`.van_moe`): PVT-v2's FFN is ``fc1 (1x1) -> 3x3 depthwise conv ->
GELU -> fc2 (1x1)`` on the token map, and fc1 and fc2 each become a GridMoE
of single 1x1-conv experts while the depthwise conv stays shared. Every
expert starts as the pretrained conv, so a freshly loaded MoE backbone
computes what the dense PVT-v2 computes.

T/S/B are PVT-v2-b0/b1/b2, the sizes of VAN-T/S/B and LSKNet-T/S/B
(3.4M / 13.1M / 24.9M backbone parameters).
"""
from typing import Dict, Optional, Sequence, Union

import torch
from mmdet.models.backbones import PyramidVisionTransformerV2
from mmdet.models.backbones.pvt import pvt_convert
from mmrotate.registry import MODELS
from torch.overrides import TorchFunctionMode

from .moe_backbone import MoEBackbone, pointwise_conv, rename_keys

# embed_dims is stage 0's width; stage i has embed_dims * num_heads[i]
# channels (num_heads 1/2/5/8). 'mini' is the SOI-Det-mini CPU size.
ARCH_SETTINGS = {
    'mini': dict(embed_dims=32, num_layers=(1, 1, 2, 1)),
    'b0': dict(embed_dims=32, num_layers=(2, 2, 2, 2)),
    'b1': dict(embed_dims=64, num_layers=(2, 2, 2, 2)),
    'b2': dict(embed_dims=64, num_layers=(3, 4, 6, 3)),
}
# Where fc1 and fc2 sit in mmdet's MixFFN.layers (fc1, dwconv, act, drop,
# fc2, drop).
FFN_FC1, FFN_FC2 = 0, 4


class _LinspaceOnCPU(TorchFunctionMode):
    """Runs ``torch.linspace`` on the CPU whatever the default device.

    mmdet's PVT reads its drop-path rates with ``torch.linspace(...)
    .item()``, which fails when the model is built on the meta device (to
    count parameters: tests/test_configs.py, model_complexity.py).
    """

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = dict(kwargs or {})
        if func is torch.linspace and kwargs.get('device') is None:
            kwargs['device'] = 'cpu'
        return func(*args, **kwargs)


@MODELS.register_module()
class PVTv2MoE(MoEBackbone, PyramidVisionTransformerV2):
    """PVT-v2 backbone whose chosen encoder layers have a grid-level MoE
    FFN.

    Args:
        arch (str | dict): ``'mini'``, ``'b0'``, ``'b1'``, ``'b2'`` (SM3Det's
            T/S/B) or a dict with ``embed_dims`` and ``num_layers``.
        moe_blocks (Sequence[Sequence[int]], optional): Per-stage indices of
            the encoder layers whose FFN fc1 and fc2 become MoE layers. None
            (default): the even layers of stages 1-3 (0-based), the placement
            SM3Det uses for VAN and LSKNet; ``[]``: the dense PVT-v2.
        moe_cfg (dict): GridMoE arguments of every MoE layer. Defaults to
            ``dict(num_experts=4, top_k=2)``.
        init_cfg (dict, optional): ``dict(type='Pretrained',
            checkpoint=PATH_OR_URL, prefix=None)`` loads an ImageNet or
            detector checkpoint (see :meth:`keys_to_dense`); otherwise
            mmdet's random init.
        **kwargs: Other arguments of mmdet's PyramidVisionTransformerV2
            (``drop_path_rate``, ``out_indices``, ...).
    """

    arch_settings = ARCH_SETTINGS

    def __init__(self,
                 arch: Union[str, dict] = 'b0',
                 moe_blocks: Optional[Sequence[Sequence[int]]] = None,
                 moe_cfg: dict = dict(num_experts=4, top_k=2),
                 init_cfg: Optional[dict] = None,
                 **kwargs):
        arch = self.resolve_arch(arch)
        with _LinspaceOnCPU():
            super().__init__(
                embed_dims=arch['embed_dims'],
                num_layers=list(arch['num_layers']),
                init_cfg=init_cfg,
                **kwargs)
        self.moe_blocks = self.resolve_moe_blocks(self.num_layers, moe_blocks)
        for stage, blocks in enumerate(self.moe_blocks):
            for block in blocks:
                ffn = self.layers[stage][1][block].ffn
                channels = ffn.embed_dims
                hidden = ffn.feedforward_channels
                ffn.layers[FFN_FC1] = pointwise_conv(channels, hidden, moe_cfg)
                ffn.layers[FFN_FC2] = pointwise_conv(hidden, channels, moe_cfg)

    def init_random_weights(self) -> None:
        """mmdet's PVT random init, only without a checkpoint: mmdet's would
        load init_cfg's itself. A checkpoint sets every tensor but the gates,
        which keep their build-time init."""
        if self.is_pretrained():
            return
        PyramidVisionTransformerV2.init_weights(self)
        # mmdet's init also drew the gates' linear layers.
        self.reset_gate_parameters()

    @staticmethod
    def keys_to_dense(
            state_dict: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
        """Rename a PVT-v2 checkpoint to mmdet's PVT-v2 names.

        The official format (whai362/PVT: ``patch_embed1``,
        ``block1.0.attn.q``, ``mlp.fc1``, ...) goes through mmdet's
        ``pvt_convert``; mmdet's own format (``layers.0.1.0.ffn.layers.0``,
        ...) is kept. Classifier keys (``head.*``) are dropped.
        """
        if any(k.startswith(('patch_embed1.', 'block1.')) for k in state_dict):
            return pvt_convert(state_dict)
        return rename_keys(state_dict, [])  # no rename: drops head.* only
