"""The single 1x1-conv expert of the VAN / LSKNet / PVT-v2 MoE layers."""
import torch.nn as nn
from mmrotate.registry import MODELS


@MODELS.register_module()
class PointwiseConv(nn.Linear):
    """A 1x1 conv on channels-last tokens, ``(..., C_in) -> (..., C_out)``.

    The single-conv expert of the VAN / LSKNet MoE layers (their MLP's fc1
    and fc2 each become an MoE). Its weight is ``(C_out, C_in)``; a GridMoE
    of PointwiseConv experts also loads a pretrained ``(C_out, C_in, 1, 1)``
    conv weight into each expert.
    """

    def __init__(self, in_channels: int, out_channels: int, bias: bool = True):
        super().__init__(in_channels, out_channels, bias=bias)
