"""Grid-level sparse mixture of experts (SM3Det's first contribution).

The layer composes four parts, each in its own module:

- :mod:`.gating`: router scores -> noisy top-k gates, balance loss;
- :mod:`.expert_dispatch`: units to their experts and back, grouped GEMM or
  one expert at a time;
- :mod:`.expert_layouts`: the other checkpoint layouts it loads;
- :mod:`.expert_pruning`: keeping only some experts (per-sensor export).
"""
from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmrotate.registry import MODELS

from .expert_dispatch import (gathered_dispatch, run_experts,
                              run_experts_gathered)
from .expert_layouts import load_other_expert_layouts
from .gating import (Routing, balance_loss, gating_noise_std,
                     kept_expert_columns, noisy_top_k_gating)
from .stacked_experts import stack_experts

ROUTING_MODES = ('grid', 'image')


@MODELS.register_module()
class GridMoE(nn.Module):
    """Sparse top-k mixture of experts over the positions of a feature map.

    Every spatial position of a channels-last feature map is a token that is
    routed on its own to ``top_k`` of ``num_experts`` experts; the output is
    the gate-weighted sum of the chosen experts' outputs. With
    ``routing='image'`` the decision is made once per image from its
    average-pooled features (the paper's ablation) and every position of
    the image goes to the same experts.

    A forward pass (no host-device synchronisation on the grouped-GEMM
    path):

    1. the router scores the units in float32 (autocast off: top-k on half
       precision logits ties and flips too easily);
    2. in training, noisy gating adds ``N(0, 1) * (softplus(x W_noise) +
       0.01)``;
    3. the top-k logits are soft-maxed among themselves (the gates of a unit
       sum to 1), all other experts get gate 0;
    4. the (unit, rank) slots are stably sorted by expert and each expert
       computes its block of them: one grouped GEMM per linear layer for
       bf16 on CUDA sm90+, else one expert at a time after one host read of
       the counts (:mod:`.expert_dispatch`); the slots are put back and
       gate-mixed (in an ONNX export each expert gathers its tokens by a
       mask and adds its gated outputs back instead: no sort, no host
       read);
    5. in training, the load-balancing loss ``w * (cv^2(importance) +
       cv^2(load))`` is kept in ``last_balance_loss`` for the model to
       collect (:func:`~.moe_utils.moe_balance_loss`).

    Args:
        in_channels (int): Channels ``C`` of the input tokens (router input).
        expert_cfg (dict): Config of one expert, built ``num_experts`` times
            from MODELS (each with its own initialisation) and then stored
            stacked (:mod:`.stacked_experts`). An expert maps channels-last
            tensors ``(..., C)`` to ``(..., C_out)``: a single 1x1 conv
            ``dict(type='PointwiseConv', in_channels=C, out_channels=C_out)``
            (any ``nn.Linear``), or a module that applies linear layers and
            parameter-free modules in registration order, e.g.
            ``dict(type='ConvNeXtMLP', ...)``.
        num_experts (int): ``N``. Defaults to 8.
        top_k (int): Experts per token, ``1 <= k <= N``. Defaults to 2.
        router_cfg (dict): Router config; ``in_channels`` and ``num_experts``
            are filled in. Defaults to ``dict(type='CosineRouter')``
            (SM3Det's); ``dict(type='LinearRouter')`` for a checkpoint of
            the original code's linear gate
            (:mod:`sm3det.converters.sm3det_original`).
        noisy_gating (bool): Add learnable gating noise in training.
            Defaults to True.
        balance_loss_weight (float): Coefficient ``w`` of the load-balancing
            loss. Defaults to 0.01.
        routing (str): ``'grid'`` (one decision per position) or ``'image'``
            (one per image, from pooled features). Defaults to ``'grid'``.

    Checkpoints: the experts' keys are ``experts.fc1.weight`` (N, 4C, C), ...
    (ConvNeXt MLP experts) or ``experts.weight`` (N, C_out, C_in),
    ``experts.bias`` (single 1x1-conv experts). ``load_state_dict`` also
    takes the per-expert keys ``experts.<e>.<key>`` of earlier checkpoints
    and, at this layer's prefix, the keys of ONE dense expert (``fc1.weight``,
    ... of a ConvNeXtMLP; ``weight``, ``bias`` of a PointwiseConv; a 1x1 conv
    weight ``(C_out, C_in, 1, 1)`` for a linear one), copied into every
    expert (:mod:`.expert_layouts`).

    Attributes:
        last_balance_loss (Tensor | None): Weighted balance loss of the last
            training forward (scalar), None after an eval forward.
        last_expert_counts (Tensor | None): ``(B, N)`` number of tokens each
            expert received per image in the last forward, when recorded
            (:meth:`record_routing`).
        last_expert_map (Tensor | None): ``(B, H, W, k)`` expert indices per
            position (best first) in the last forward, when recorded (the
            expert-usage hook and tool read it).
        router_columns (Tensor | None): After
            :func:`~.expert_pruning.keep_experts`, the router's (and noise
            projection's) ``(N,)`` columns of the kept experts; None: all.
    """

    def __init__(self,
                 in_channels: int,
                 expert_cfg: dict,
                 num_experts: int = 8,
                 top_k: int = 2,
                 router_cfg: dict = dict(type='CosineRouter'),
                 noisy_gating: bool = True,
                 balance_loss_weight: float = 0.01,
                 routing: str = 'grid'):
        super().__init__()
        if not 1 <= top_k <= num_experts:
            raise ValueError(f'GridMoE needs 1 <= top_k <= num_experts, got '
                             f'top_k={top_k}, num_experts={num_experts}')
        if routing not in ROUTING_MODES:
            raise ValueError(f'GridMoE routing must be one of {ROUTING_MODES}'
                             f', got {routing!r}')
        self.num_experts = num_experts
        self.top_k = top_k
        self.balance_loss_weight = balance_loss_weight
        self.routing = routing

        # Parts resolve in this plugin's scope, also when the model around
        # the backbone is built in another one (e.g. mmdet's GFL).
        self.router = MODELS.build(
            dict(
                dict(_scope_='mmrotate'),
                **router_cfg,
                in_channels=in_channels,
                num_experts=num_experts))
        # W_noise of the noisy gate: zero at start, so the noise std is eps.
        self.noise_proj = nn.Linear(
            in_channels, num_experts, bias=False) if noisy_gating else None
        # Built one by one (today's init of each expert), stored stacked.
        self.experts = stack_experts([
            MODELS.build(dict(dict(_scope_='mmrotate'), **expert_cfg))
            for _ in range(num_experts)
        ])
        self.reset_gate_parameters()

        self.last_balance_loss: Optional[torch.Tensor] = None
        self.record_expert_counts = False
        self.record_expert_map = False
        self.last_expert_counts: Optional[torch.Tensor] = None
        self.last_expert_map: Optional[torch.Tensor] = None
        # 0..N-1, where each expert's block of sorted slots ends.
        self.register_buffer(
            'expert_ids', torch.arange(num_experts), persistent=False)
        self.register_buffer('router_columns', None, persistent=False)
        self.register_load_state_dict_pre_hook(load_other_expert_layouts)

    def reset_gate_parameters(self) -> None:
        """Re-initialise router and noise weights (not the experts).

        Backbones call this after their generic weight init, which would
        otherwise overwrite the router's dedicated initialisation.
        """
        self.router.reset_parameters()
        if self.noise_proj is not None:
            nn.init.zeros_(self.noise_proj.weight)

    def record_routing(self,
                       expert_counts: bool = True,
                       expert_map: bool = False) -> None:
        """Switch recording of routing statistics on or off (off: no cost)."""
        self.record_expert_counts = expert_counts
        self.record_expert_map = expert_map
        if not expert_counts:
            self.last_expert_counts = None
        if not expert_map:
            self.last_expert_map = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Route and mix.

        Args:
            x: ``(B, H, W, C)`` channels-last features.

        Returns:
            ``(B, H, W, C_out)``, in the experts' output dtype.
        """
        batch, height, width, channels = x.shape
        if self.routing == 'grid':
            units = router_inputs = x.reshape(-1, channels)
        else:
            units = x.reshape(batch, height * width, channels)
            router_inputs = units.mean(dim=1)

        routing = self._route(router_inputs)
        if gathered_dispatch():
            mixed = run_experts_gathered(self.experts, units, routing.gates,
                                         routing.expert_index)
            return mixed.reshape(batch, height, width, -1)
        mixed, slot_ends = run_experts(self.experts, self.expert_ids, units,
                                       routing.gates, routing.expert_index)

        self.last_balance_loss = balance_loss(
            routing, slot_ends,
            self.balance_loss_weight) if self.training else None
        if self.record_expert_counts or self.record_expert_map:
            self._record(routing.expert_index, batch, height, width)
        return mixed.reshape(batch, height, width, -1)

    def _route(self, router_inputs: torch.Tensor) -> Routing:
        """Top-k routing of units ``(U, C)``, in float32."""
        with torch.autocast(router_inputs.device.type, enabled=False):
            tokens = router_inputs.float()
            clean = kept_expert_columns(
                self.router(tokens), self.router_columns)
            noise_scale = None
            if self.noise_proj is not None and self.training:
                noise_scale = gating_noise_std(
                    kept_expert_columns(
                        self.noise_proj(tokens), self.router_columns))
            return noisy_top_k_gating(clean, noise_scale, self.top_k)

    @torch.no_grad()
    def _record(self, expert_index: torch.Tensor, batch: int, height: int,
                width: int) -> None:
        """Store per-image expert token counts and/or the expert map."""
        positions = height * width
        if self.record_expert_counts:
            chosen = F.one_hot(expert_index, self.num_experts).sum(dim=1)
            if self.routing == 'grid':
                counts = chosen.reshape(batch, positions, -1).sum(dim=1)
            else:
                counts = chosen * positions
            self.last_expert_counts = counts
        if self.record_expert_map:
            if self.routing == 'grid':
                expert_map = expert_index.reshape(batch, height, width, -1)
            else:
                expert_map = expert_index[:, None, None, :].expand(
                    batch, height, width, -1)
            self.last_expert_map = expert_map.clone()
