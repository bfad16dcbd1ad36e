"""Domain-attentive SE adapters (Wang et al., "Towards Universal Object
Detection by Domain Attention", CVPR 2019): the DA baseline of SM3Det's
Table 1.

A bank of N squeeze-and-excitation adapters, one per domain (here N = 3:
SAR, optical, infrared). Every adapter turns an image's globally pooled
channels into channel logits; a domain attention (a linear layer and a
softmax over the N adapters, from the same pooled channels) mixes the N
logit vectors per image, and the sigmoid of the mix rescales the channels.
No dataset label is used: the attention learns which adapters an image needs.
"""
from typing import Optional

import torch
import torch.nn as nn
from mmrotate.registry import MODELS
from torch import Tensor


class SEAdapter(nn.Module):
    """One squeeze-and-excitation adapter without its sigmoid.

    Args:
        channels (int): ``C``.
        reduction (int): Bottleneck ``C -> C / reduction -> C``.
    """

    def __init__(self, channels: int, reduction: int = 16):
        super().__init__()
        hidden_channels = max(channels // reduction, 1)
        self.fc1 = nn.Linear(channels, hidden_channels)
        self.act = nn.ReLU(inplace=True)
        self.fc2 = nn.Linear(hidden_channels, channels)

    def forward(self, pooled: Tensor) -> Tensor:
        """Pooled channels ``(B, C)`` -> channel logits ``(B, C)``."""
        return self.fc2(self.act(self.fc1(pooled)))


@MODELS.register_module()
class DomainAttentionAdapter(nn.Module):
    """A bank of per-domain SE adapters mixed by a learned domain attention.

    ``out = x * sigmoid(sum_n a_n * SE_n(pool(x)))`` with
    ``a = softmax(W pool(x) + b)`` over the ``num_domains`` adapters
    (Wang et al. mix the adapters' logits and apply one sigmoid).

    Args:
        channels (int): ``C`` of the rescaled feature map.
        num_domains (int): Adapters in the bank (one per dataset).
            Defaults to 3.
        reduction (int): SE bottleneck reduction. Defaults to 16.

    Attributes:
        last_attention (Tensor | None): ``(B, num_domains)`` attention of the
            last forward (detached), for inspecting which adapters images use.
    """

    def __init__(self,
                 channels: int,
                 num_domains: int = 3,
                 reduction: int = 16):
        super().__init__()
        if num_domains < 1:
            raise ValueError(f'num_domains must be >= 1, got {num_domains}')
        self.num_domains = num_domains
        self.adapters = nn.ModuleList(
            [SEAdapter(channels, reduction) for _ in range(num_domains)])
        self.attention = nn.Linear(channels, num_domains)
        self.last_attention = None

    def domain_attention(self, pooled: Tensor) -> Tensor:
        """Pooled channels ``(B, C)`` -> adapter weights ``(B, N)``, rows
        summing to 1."""
        return self.attention(pooled).softmax(dim=-1)

    def forward(self, x: Tensor, attention: Optional[Tensor] = None) -> Tensor:
        """Rescale the channels of ``x``.

        Args:
            x (Tensor): ``(B, C, H, W)`` features.
            attention (Tensor, optional): ``(B, N)`` adapter weights to use
                instead of the learned domain attention.

        Returns:
            Tensor: ``(B, C, H, W)``, ``x`` times a per-image channel gate
            in (0, 1).
        """
        pooled = x.mean(dim=(2, 3))
        if attention is None:
            attention = self.domain_attention(pooled)
        elif attention.shape != (x.shape[0], self.num_domains):
            raise ValueError(f'attention must be (B, N) = ({x.shape[0]}, '
                             f'{self.num_domains}), got '
                             f'{tuple(attention.shape)}')
        self.last_attention = attention.detach()
        logits = torch.stack([adapter(pooled) for adapter in self.adapters],
                             dim=-1)  # (B, C, N)
        mixed = (logits * attention[:, None, :]).sum(dim=-1)
        return x * mixed.sigmoid()[:, :, None, None]
