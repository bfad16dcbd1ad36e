"""Grid-level sparse mixture of experts (SM3Det's first contribution).

Every spatial position of a channels-last feature map is a token that is
routed on its own to ``top_k`` of ``num_experts`` experts; the output is the
gate-weighted sum of the chosen experts' outputs. With ``routing='image'``
the decision is made once per image from its average-pooled features (the
paper's ablation) and every position of the image goes to the same experts.

How a forward pass runs (no host-device synchronisation on the grouped-GEMM
path):

1. the router scores the tokens in float32 (autocast off: top-k on half
   precision logits ties and flips too easily);
2. in training, noisy gating adds ``N(0, 1) * (softplus(x W_noise) + eps)``;
3. the top-k logits are soft-maxed among themselves (the gates of a token sum
   to 1), all other experts get gate 0;
4. the (token, rank) slots are counted per expert (a scatter-add) and
   stably sorted by expert; the cumulative counts, on the device, delimit
   each expert's rows;
5. the experts, stored as stacked parameters
   (:mod:`~sm3det.models.layers.stacked_experts`), compute their rows: one
   grouped GEMM per linear layer on a GPU that has a fast one, else one
   expert at a time after one host read of the counts (on CPU this is the
   faster way), and the slots are put back and gate-mixed;
6. the load-balancing loss ``w * (cv^2(importance) + cv^2(load))`` is kept in
   ``last_balance_loss`` (training only) for the model to collect
   (:func:`~sm3det.models.layers.moe_utils.moe_balance_loss`).

Checkpoints: the experts' state-dict keys are ``experts.fc1.weight`` (N, 4C,
C), ... (ConvNeXt MLP experts) or ``experts.weight`` (N, C_out, C_in),
``experts.bias`` (single 1x1-conv experts). Two other layouts load through a
``load_state_dict`` pre-hook: the per-expert keys ``experts.<e>.fc1.weight``
of earlier checkpoints, and a dense checkpoint: a GridMoE that stands where
a dense expert module stood (a ConvNeXt MLP ``mlp``, a 1x1 conv ``fc1``)
finds that module's keys at its own prefix and copies them into every
expert, so a backbone that swaps a dense layer for a GridMoE loads its dense
checkpoint with no key rewriting and then computes what the dense model
computes.
"""
import functools
import math
from typing import Dict, Optional, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmrotate.registry import MODELS

from .stacked_experts import (HAS_GROUPED_MM, ExpertRows, compute_dtype,
                              stack_experts, stacked_linears)

ROUTING_MODES = ('grid', 'image')
EXPERT_BACKENDS = ('auto', 'grouped_mm', 'loop')


def squared_coefficient_of_variation(values: torch.Tensor) -> torch.Tensor:
    """``var / mean^2`` over the last dimension (0 for a single value).

    Uses the unbiased variance and a tiny epsilon against an all-zero input,
    as in Shazeer et al. (2017). ``(..., N) -> (...)``.
    """
    if values.shape[-1] <= 1:
        return values.new_zeros(values.shape[:-1])
    return values.var(dim=-1) / (values.mean(dim=-1)**2 + 1e-10)


def probability_in_top_k(clean_logits: torch.Tensor,
                         noisy_logits: torch.Tensor, noise_std: torch.Tensor,
                         ranked_noisy_logits: torch.Tensor,
                         top_k: int) -> torch.Tensor:
    """Smooth probability that each expert is among a token's top k.

    For expert ``n`` the question is: with fresh noise on ``n`` only (the
    other experts' noisy logits fixed), is its logit still above the k-th
    best of the others? If ``n`` is in the top k now, the competitor is the
    (k+1)-th best logit, otherwise the k-th best:
    ``P = Phi((clean - competitor) / noise_std)``. This is differentiable in
    the clean logits and the noise scale, unlike a hard count.

    Args:
        clean_logits, noisy_logits, noise_std: ``(T, N)``.
        ranked_noisy_logits: ``(T, k + 1)`` the largest noisy logits, sorted
            in descending order.
        top_k: ``k``.

    Returns:
        ``(T, N)`` probabilities.
    """
    threshold_if_in = ranked_noisy_logits[:, top_k:top_k + 1]
    threshold_if_out = ranked_noisy_logits[:, top_k - 1:top_k]
    competitor = torch.where(noisy_logits > threshold_if_in, threshold_if_in,
                             threshold_if_out)
    return torch.special.ndtr((clean_logits - competitor) / noise_std)


class DispatchToSlots(torch.autograd.Function):
    """Copy each unit to its k slots, in expert-sorted slot order.

    ``index_select`` would do the forward, but its backward is a
    scatter-add; since every unit has exactly k slots, the backward here is
    a gather and a sum over k, which parallelises well.
    """

    @staticmethod
    def forward(ctx, units, slot_order, inverse_order, top_k):
        """units ``(U, ...)`` -> ``(U * k, ...)``, slot ``slot_order[i]``
        at row i."""
        ctx.save_for_backward(inverse_order)
        ctx.top_k = top_k
        return units.index_select(0, slot_order // top_k)

    @staticmethod
    def backward(ctx, grad):
        inverse_order, = ctx.saved_tensors
        grad = grad.index_select(0, inverse_order)
        return grad.unflatten(0, (-1, ctx.top_k)).sum(dim=1), None, None, None


class UnsortSlots(torch.autograd.Function):
    """Put expert-sorted slot rows back in (unit, rank) order: a permutation,
    so the backward is the inverse gather instead of a scatter-add."""

    @staticmethod
    def forward(ctx, sorted_rows, slot_order, inverse_order):
        ctx.save_for_backward(slot_order)
        return sorted_rows.index_select(0, inverse_order)

    @staticmethod
    def backward(ctx, grad):
        slot_order, = ctx.saved_tensors
        return grad.index_select(0, slot_order), None, None


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


@MODELS.register_module()
class GridMoE(nn.Module):
    """Sparse top-k mixture of experts over the positions of a feature map.

    Args:
        in_channels (int): Channels ``C`` of the input tokens (router input).
        expert_cfg (dict): Config of one expert, built ``num_experts`` times
            from MODELS (each with its own initialisation) and then stored
            stacked. An expert maps channels-last tensors ``(..., C)`` to
            ``(..., C_out)``: a single 1x1 conv ``dict(type='PointwiseConv',
            in_channels=C, out_channels=C_out)`` (any ``nn.Linear``), or a
            module that applies linear layers and parameter-free modules in
            registration order, e.g. ``dict(type='ConvNeXtMLP', ...)``.
        num_experts (int): ``N``. Defaults to 8.
        top_k (int): Experts per token, ``1 <= k <= N``. Defaults to 2.
        router_cfg (dict): Router config; ``in_channels`` and ``num_experts``
            are filled in. Defaults to ``dict(type='CosineRouter')``.
        noisy_gating (bool): Add learnable gating noise in training.
            Defaults to True.
        noise_epsilon (float): Minimum noise std. Defaults to 0.01.
        balance_loss_weight (float): Coefficient ``w`` of the load-balancing
            loss. Defaults to 0.01.
        routing (str): ``'grid'`` (one decision per position) or ``'image'``
            (one per image, from pooled features). Defaults to ``'grid'``.
        expert_backend (str): How the experts compute: ``'grouped_mm'`` (one
            grouped GEMM per linear layer, no host synchronisation),
            ``'loop'`` (one expert at a time through the whole expert, one
            host read of the counts) or ``'auto'`` (default): ``grouped_mm``
            for bf16 on CUDA sm90+, the loop elsewhere: on CPU (measured
            faster: ``grouped_mm`` loops over the experts there too) and on
            CUDA in other dtypes and on older GPUs (where ``grouped_mm``
            falls back to a host-side loop itself).
            The loop is also taken where rows are not 16-byte aligned and
            under ``torch.jit`` tracing (FLOP counting).
        compile_gate (bool): Run the routing arithmetic (router, noisy
            gate, top-k, balance loss) under ``torch.compile(dynamic=True)``:
            it fuses into a few kernels, about 130 fewer operations (kernel
            launches on a GPU) per forward + backward. Compiled on first use,
            once per channel count (seconds); the gating noise then comes
            from the compiled kernels' generator. Defaults to False.

    Checkpoints: besides its own keys, ``load_state_dict`` accepts the
    per-expert keys ``experts.<e>.<key>`` of earlier checkpoints (stacked),
    and, at this layer's prefix, the keys of ONE dense expert
    (``fc1.weight``, ... of a ConvNeXtMLP; ``weight``, ``bias`` of a
    PointwiseConv) when the state dict has no expert key of this layer: they
    are copied into every expert. A 1x1 conv weight ``(C_out, C_in, 1, 1)``
    is taken for a linear ``(C_out, C_in)`` one.

    Attributes:
        last_balance_loss (Tensor | None): Weighted balance loss of the last
            training forward (scalar), None after an eval forward.
        last_expert_counts (Tensor | None): ``(B, N)`` number of tokens each
            expert received per image in the last forward, when recorded.
        last_expert_map (Tensor | None): ``(B, H, W, k)`` expert indices per
            position (best first) in the last forward, when recorded.
    """

    def __init__(self,
                 in_channels: int,
                 expert_cfg: dict,
                 num_experts: int = 8,
                 top_k: int = 2,
                 router_cfg: dict = dict(type='CosineRouter'),
                 noisy_gating: bool = True,
                 noise_epsilon: float = 0.01,
                 balance_loss_weight: float = 0.01,
                 routing: str = 'grid',
                 expert_backend: str = 'auto',
                 compile_gate: bool = False):
        super().__init__()
        if not 1 <= top_k <= num_experts:
            raise ValueError(f'GridMoE needs 1 <= top_k <= num_experts, got '
                             f'top_k={top_k}, num_experts={num_experts}')
        if routing not in ROUTING_MODES:
            raise ValueError(f'GridMoE routing must be one of {ROUTING_MODES}'
                             f', got {routing!r}')
        if expert_backend not in EXPERT_BACKENDS:
            raise ValueError(f'GridMoE expert_backend must be one of '
                             f'{EXPERT_BACKENDS}, got {expert_backend!r}')
        if expert_backend == 'grouped_mm' and not HAS_GROUPED_MM:
            raise ValueError("expert_backend='grouped_mm' needs torch."
                             'nn.functional.grouped_mm (torch >= 2.9)')
        self.num_experts = num_experts
        self.top_k = top_k
        self.noisy_gating = noisy_gating
        self.noise_epsilon = noise_epsilon
        self.balance_loss_weight = balance_loss_weight
        self.routing = routing
        self.expert_backend = expert_backend
        self.compile_gate = compile_gate

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
        # After keep_experts: the router's (and noise's) columns of the kept
        # experts, (N,) int64; None: all of them.
        self.register_buffer('router_columns', None, persistent=False)
        self._load_hook = self.register_load_state_dict_pre_hook(
            _load_other_expert_layouts)

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

    @torch.no_grad()
    def keep_experts(self, indices: Sequence[int]) -> None:
        """Keep only experts ``indices`` (in that order), in place.

        The router and the noise projection keep scoring every original
        expert and the layer takes the kept experts' columns of their
        logits: each unit's logits of the kept experts are bit for bit what
        they were (a GEMM with fewer columns may round differently), so
        routing among them is unchanged. Afterwards ``num_experts ==
        len(indices)`` and expert ``i`` is the former expert ``indices[i]``.

        Raises:
            ValueError: repeated or out-of-range indices, or fewer than
                ``top_k`` of them.
        """
        indices = [int(i) for i in indices]
        if (len(set(indices)) != len(indices)
                or not all(0 <= i < self.num_experts for i in indices)):
            raise ValueError(f'keep_experts needs distinct expert indices in '
                             f'[0, {self.num_experts}), got {indices}')
        if len(indices) < self.top_k:
            raise ValueError(f'keep_experts: {len(indices)} expert(s) left '
                             f'{indices}, fewer than top_k={self.top_k}')
        kept = torch.tensor(indices, device=self.expert_ids.device)
        self.router_columns = kept if self.router_columns is None else \
            self.router_columns[kept]
        for linear in stacked_linears(self.experts):
            linear.keep_experts(indices)
        self.num_experts = len(indices)
        self.expert_ids = self.expert_ids[:len(indices)].clone()
        self.last_balance_loss = None
        self.last_expert_counts = self.last_expert_map = None

    def expert_shapes(self) -> Dict[str, torch.Size]:
        """Key of one expert's state dict (``fc1.weight``, ...) -> the shape
        of that tensor in one expert."""
        return {k: v.shape[1:] for k, v in self.experts.state_dict().items()}

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

        gates, expert_index, logits = self._maybe_compiled(
            '_gate', router_inputs)
        mixed, slot_ends = self._run_experts(units, gates, expert_index)

        self.last_balance_loss = self._maybe_compiled(
            '_balance_loss', gates, expert_index, slot_ends,
            logits) if self.training else None
        if self.record_expert_counts or self.record_expert_map:
            self._record(expert_index, batch, height, width)
        return mixed.reshape(batch, height, width, -1)

    def _maybe_compiled(self, method: str, *args):
        """``self.<method>(*args)``, compiled with ``compile_gate``."""
        function = getattr(type(self), method)
        if self.compile_gate:
            function = _compiled(function)
        return function(self, *args)

    def _gate(
        self, router_inputs: torch.Tensor
    ) -> Tuple[torch.Tensor, torch.Tensor, dict]:
        """Top-k gates of routing units ``(U, C)``.

        Returns:
            gates ``(U, k)`` float32 summing to 1 per unit; expert indices
            ``(U, k)`` best first; and a dict of the logits the balance loss
            needs (``clean``, ``noisy``, ``noise_std``, ``ranked``).
        """
        with torch.autocast(router_inputs.device.type, enabled=False):
            tokens = router_inputs.float()
            clean = self._kept_columns(self.router(tokens))
            logits = dict(clean=clean, noisy=clean, noise_std=None)
            if self.noisy_gating and self.training:
                noise_std = F.softplus(
                    self._kept_columns(
                        self.noise_proj(tokens))) + self.noise_epsilon
                logits.update(
                    noisy=torch.addcmul(clean, torch.randn_like(clean),
                                        noise_std),
                    noise_std=noise_std)
            # One rank past k: the smooth load estimate compares with it.
            num_ranked = min(self.top_k + 1, self.num_experts)
            ranked, ranked_index = logits['noisy'].topk(num_ranked, dim=1)
            logits['ranked'] = ranked
            gates = ranked[:, :self.top_k].softmax(dim=1)
        return gates, ranked_index[:, :self.top_k], logits

    def _kept_columns(self, scores: torch.Tensor) -> torch.Tensor:
        """``(U, N_router)`` per-expert scores -> the kept experts' ``(U, N)``
        (see :meth:`keep_experts`)."""
        if self.router_columns is None:
            return scores
        return scores.index_select(1, self.router_columns)

    def _run_experts(
            self, units: torch.Tensor, gates: torch.Tensor,
            expert_index: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """Each expert computes only its units; results are gate-mixed.

        Args:
            units: ``(U, C)`` tokens for grid routing, ``(U, H*W, C)`` images
                for image routing.
            gates, expert_index: ``(U, k)``.

        Returns:
            The mixed outputs ``(U, C_out)`` or ``(U, H*W, C_out)``, and
            ``(N,)`` int32 cumulative slot counts per expert (expert ``e``
            has ``ends[e] - ends[e - 1]`` slots).
        """
        num_units, top_k = expert_index.shape
        # Slots are the flat (unit, rank) pairs; a stable sort by expert
        # makes each expert's slots one contiguous block, in slot order,
        # which ends where the sorted expert ids pass the expert's id.
        sorted_experts, slot_order = expert_index.flatten().sort(stable=True)
        ends = torch.searchsorted(
            sorted_experts, self.expert_ids, right=True, out_int32=True)
        inverse_order = torch.empty_like(slot_order).scatter_(
            0, slot_order,
            torch.arange(slot_order.numel(), device=slot_order.device))
        expert_inputs = DispatchToSlots.apply(units, slot_order, inverse_order,
                                              top_k)
        rows = self._expert_rows(sorted_experts, ends, expert_inputs)
        slot_outputs = self.experts(
            expert_inputs.reshape(-1, expert_inputs.shape[-1]), rows)
        slot_outputs = UnsortSlots.apply(
            slot_outputs.unflatten(0, expert_inputs.shape[:-1]), slot_order,
            inverse_order)
        slot_outputs = slot_outputs.unflatten(0, (num_units, top_k))
        if gates.dtype != slot_outputs.dtype:
            gates = gates.to(slot_outputs.dtype)
        gates = gates.view(num_units, top_k, *[1] * (slot_outputs.dim() - 2))
        return (slot_outputs * gates).sum(dim=1), ends

    def _expert_rows(self, sorted_experts: torch.Tensor, ends: torch.Tensor,
                     expert_inputs: torch.Tensor) -> ExpertRows:
        """Where each expert's rows lie, for the chosen backend. An
        image-routed slot is the H*W rows of one image."""
        rows_per_slot = 1 if expert_inputs.dim() == 2 else \
            expert_inputs.shape[1]
        ends = ends * rows_per_slot if rows_per_slot > 1 else ends
        if not self._use_grouped_mm(expert_inputs):
            host_ends = ends.tolist()  # the loop's one host sync
            return ExpertRows(
                None, ends,
                [b - a for a, b in zip([0] + host_ends, host_ends)])
        # Each row's expert: only the grouped path's bias lookup needs it.
        return ExpertRows(
            sorted_experts.repeat_interleave(rows_per_slot)
            if rows_per_slot > 1 else sorted_experts, ends, None)

    def _use_grouped_mm(self, x: torch.Tensor) -> bool:
        """The grouped GEMM, or the per-expert loop (see ``expert_backend``).
        """
        if self.expert_backend == 'loop' or torch.jit.is_tracing():
            return False
        dtype = compute_dtype(x)
        if not all(
                linear.grouped_mm_fits(dtype)
                for linear in stacked_linears(self.experts)):
            return False
        if self.expert_backend == 'grouped_mm':
            return True
        # The synchronisation-free kernel is CUDA bf16 on sm90+; elsewhere
        # grouped_mm loops over the experts itself, over all-rows buffers.
        return (HAS_GROUPED_MM and x.device.type == 'cuda'
                and dtype == torch.bfloat16
                and torch.cuda.get_device_capability(x.device) >= (9, 0))

    def _balance_loss(self, gates: torch.Tensor, expert_index: torch.Tensor,
                      slot_ends: torch.Tensor, logits: dict) -> torch.Tensor:
        """``w * (cv^2(importance) + cv^2(load))`` over this batch's units.

        importance: per-expert sum of gates; load: per-expert unit count
        (from the cumulative slot counts ``slot_ends``), or with noisy gating
        (and k < N) the smooth expected count.
        """
        importance = gates.new_zeros(self.num_experts).index_add_(
            0, expert_index.flatten(), gates.flatten())
        if logits['noise_std'] is not None and self.top_k < self.num_experts:
            load = probability_in_top_k(logits['clean'], logits['noisy'],
                                        logits['noise_std'], logits['ranked'],
                                        self.top_k).sum(dim=0)
        else:
            load = torch.diff(
                slot_ends.float(), prepend=slot_ends.new_zeros(1))
        return self.balance_loss_weight * squared_coefficient_of_variation(
            torch.stack([importance, load])).sum()

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


@functools.lru_cache(maxsize=None)
def _compiled(function):
    """``function`` under ``torch.compile``, built once for every layer
    (dynamic shapes: token counts vary from batch to batch)."""
    return torch.compile(function, dynamic=True)


def as_expert_tensor(key: str, value: torch.Tensor,
                     shape: torch.Size) -> torch.Tensor:
    """A checkpoint tensor in an expert's ``shape``: a 1x1 conv weight
    ``(C_out, C_in, 1, 1)`` becomes ``(C_out, C_in)``.

    Raises:
        ValueError: the element counts differ (names ``key``).
    """
    if value.shape == shape:
        return value
    if value.numel() == math.prod(shape):
        return value.reshape(shape)
    raise ValueError(f'GridMoE: checkpoint tensor {key} has shape '
                     f'{tuple(value.shape)}; an expert needs {tuple(shape)}')


def _load_other_expert_layouts(module: GridMoE, state_dict: dict, prefix: str,
                               local_metadata, strict, missing_keys,
                               unexpected_keys, error_msgs) -> None:
    """``load_state_dict`` pre-hook: other expert layouts -> stacked keys.

    1. Per-expert keys ``<prefix>experts.<e>.<key>`` (earlier checkpoints)
       of all ``N`` experts are stacked into ``<prefix>experts.<key>``.
    2. When no expert key of this layer is left (``<prefix>experts.*``),
       the keys of one dense expert (``<prefix>fc1.weight``,
       ``<prefix>weight``, ...) are copied into every expert.

    The keys taken are replaced, so a strict load is satisfied; shape
    problems are reported by name through ``load_state_dict``'s errors.
    """
    shapes = module.expert_shapes()
    num_experts = module.num_experts
    for key, shape in shapes.items():
        per_expert = {}
        for name in list(state_dict):
            head = prefix + 'experts.'
            if name.startswith(head) and name.endswith('.' + key):
                index = name[len(head):-len(key) - 1]
                if index.isdigit():
                    per_expert[int(index)] = name
        if not per_expert:
            continue
        if sorted(per_expert) != list(range(num_experts)):
            error_msgs.append(
                f'GridMoE {prefix!r}: the checkpoint has per-expert '
                f'{key!r} for experts {sorted(per_expert)}, the layer has '
                f'{num_experts} experts')
            continue
        try:
            tensors = [
                as_expert_tensor(per_expert[e], state_dict[per_expert[e]],
                                 shape) for e in range(num_experts)
            ]
        except ValueError as error:
            error_msgs.append(str(error))
            continue
        for name in per_expert.values():
            del state_dict[name]
        state_dict[prefix + 'experts.' + key] = torch.stack(tensors)

    if any(name.startswith(prefix + 'experts.') for name in state_dict):
        return
    for key, shape in shapes.items():
        if prefix + key not in state_dict:
            continue
        try:
            value = as_expert_tensor(prefix + key, state_dict[prefix + key],
                                     shape)
        except ValueError as error:
            error_msgs.append(str(error))
            continue
        del state_dict[prefix + key]
        state_dict[prefix + 'experts.' + key] = value.expand(
            num_experts, *shape).contiguous()
