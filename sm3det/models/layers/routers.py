"""Routers of the grid-level MoE: they score every token against every expert.

A router maps tokens ``(T, C)`` to clean (noise-free) logits ``(T, N)``; the
top-k choice, the softmax over the chosen k, noisy gating and the balance loss
live in :mod:`~sm3det.models.layers.gating`, so every router gets them alike.
GridMoE builds :class:`CosineRouter` (SM3Det's gate) unless its ``router_cfg``
says otherwise; :class:`LinearRouter` is the original code's other gate.

A router also implements ``reset_parameters()``.
"""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmrotate.registry import MODELS


@MODELS.register_module()
class CosineRouter(nn.Module):
    """Cosine-similarity router with a learnable temperature (SM3Det's gate).

    ``logits = cos(W x, E_n) * exp(min(t, ln max_logit_scale))``: the token is
    projected by ``W`` (``C -> proj_dim``, with bias) and compared with one
    learnable embedding ``E_n`` per expert; both are L2-normalised, so only
    directions matter and the learnable scale ``exp(t)`` sets how peaked the
    softmax is.

    Args:
        in_channels (int): Token channels ``C``.
        num_experts (int): Number of experts ``N``.
        proj_dim (int, optional): Embedding size; ``min(C // 2, 256)`` when
            None, as in the reference implementation.
        init_temperature (float): Initial temperature; ``t`` starts at
            ``ln(1 / init_temperature)``. Defaults to 0.5.
        max_logit_scale (float): Upper bound of ``exp(t)``, which keeps the
            logits from blowing up. Defaults to 100.
        embedding_init_std (float): Std of the normal init of ``E``.
            Defaults to 0.01.
    """

    def __init__(self,
                 in_channels: int,
                 num_experts: int,
                 proj_dim: int = None,
                 init_temperature: float = 0.5,
                 max_logit_scale: float = 100.,
                 embedding_init_std: float = 0.01):
        super().__init__()
        if proj_dim is None:
            proj_dim = min(in_channels // 2, 256)
        if proj_dim < 1:
            raise ValueError(f'CosineRouter needs proj_dim >= 1, got '
                             f'{proj_dim} (in_channels={in_channels})')
        self.init_temperature = init_temperature
        self.max_log_scale = math.log(max_logit_scale)
        self.embedding_init_std = embedding_init_std
        self.proj = nn.Linear(in_channels, proj_dim)
        # One column per expert: (proj_dim, N).
        self.expert_embeddings = nn.Parameter(
            torch.empty(proj_dim, num_experts))
        self.log_scale = nn.Parameter(torch.empty(()))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Initialise ``E ~ N(0, std)``, ``t = ln(1 / T0)``, default ``W``."""
        self.proj.reset_parameters()
        nn.init.normal_(self.expert_embeddings, std=self.embedding_init_std)
        nn.init.constant_(self.log_scale, math.log(1. / self.init_temperature))

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """Score tokens ``(T, C)``; returns logits ``(T, N)``."""
        projected = F.normalize(self.proj(tokens), dim=-1)
        scale = self.log_scale.clamp(max=self.max_log_scale).exp()
        # The scale on the (proj_dim, N) embeddings, not the (T, N) logits.
        embeddings = F.normalize(self.expert_embeddings, dim=0) * scale
        return projected @ embeddings


@MODELS.register_module()
class LinearRouter(nn.Module):
    """Plain linear router ``logits = x W`` (Shazeer et al., 2017).

    ``W`` (no bias) starts at zero, so at step 0 every expert scores the same
    and the choice is made by the gating noise alone.

    Args:
        in_channels (int): Token channels ``C``.
        num_experts (int): Number of experts ``N``.
    """

    def __init__(self, in_channels: int, num_experts: int):
        super().__init__()
        self.proj = nn.Linear(in_channels, num_experts, bias=False)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Zero the gating weights."""
        nn.init.zeros_(self.proj.weight)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """Score tokens ``(T, C)``; returns logits ``(T, N)``."""
        return self.proj(tokens)
