"""The routing arithmetic of a GridMoE layer: noisy top-k gates and the
load-balancing loss (Shazeer et al., 2017, with SM3Det's cosine router).

Everything here is float32 arithmetic on router scores, ``U`` routing units
(tokens, or images under image routing) by ``N`` experts:

1. :func:`gating_noise_std`: in training, the learnable noise scale
   ``softplus(x W_noise) + NOISE_EPSILON``;
2. :func:`noisy_top_k_gating`: ``noisy = clean + N(0, 1) * noise_std``, the
   top-k experts of each unit and their gates, a softmax over the k chosen
   logits (the gates of a unit sum to 1; the other experts get 0);
3. :func:`balance_loss`: ``w * (cv^2(importance) + cv^2(load))`` over the
   units, with :func:`squared_coefficient_of_variation` and, under noisy
   gating, the smooth load :func:`probability_in_top_k`.
"""
from typing import NamedTuple, Optional

import torch
import torch.nn.functional as F

#: Minimum std of the gating noise (the reference implementation's 0.01).
NOISE_EPSILON = 0.01


class Routing(NamedTuple):
    """The top-k decision for ``U`` units over ``N`` experts.

    Attributes:
        gates: ``(U, k)`` float32, summing to 1 per unit.
        expert_index: ``(U, k)`` int64 chosen experts, best first.
        clean_logits: ``(U, N)`` router scores.
        noisy_logits: ``(U, N)`` scores the choice was made on
            (``clean_logits`` without noise).
        noise_std: ``(U, N)`` noise scale, None without noise.
        ranked_logits: ``(U, min(k + 1, N))`` largest noisy logits, sorted
            in descending order (one past k for :func:`probability_in_top_k`).
    """
    gates: torch.Tensor
    expert_index: torch.Tensor
    clean_logits: torch.Tensor
    noisy_logits: torch.Tensor
    noise_std: Optional[torch.Tensor]
    ranked_logits: torch.Tensor


def gating_noise_std(noise_logits: torch.Tensor) -> torch.Tensor:
    """Gating noise scale ``softplus(x W_noise) + NOISE_EPSILON``, ``(U, N)``
    from the noise projection's ``(U, N)`` output."""
    return F.softplus(noise_logits) + NOISE_EPSILON


def noisy_top_k_gating(clean_logits: torch.Tensor,
                       noise_scale: Optional[torch.Tensor],
                       top_k: int) -> Routing:
    """Choose each unit's top ``k`` experts and gate them.

    Args:
        clean_logits: ``(U, N)`` float32 router scores.
        noise_scale: ``(U, N)`` std of the Gaussian noise added to them
            (draws from the global generator), None for no noise.
        top_k: ``k``, at most ``N``.
    """
    noisy = clean_logits if noise_scale is None else torch.addcmul(
        clean_logits, torch.randn_like(clean_logits), noise_scale)
    num_ranked = min(top_k + 1, clean_logits.shape[1])
    ranked, ranked_index = noisy.topk(num_ranked, dim=1)
    return Routing(ranked[:, :top_k].softmax(dim=1), ranked_index[:, :top_k],
                   clean_logits, noisy, noise_scale, ranked)


def kept_expert_columns(scores: torch.Tensor,
                        columns: Optional[torch.Tensor]) -> torch.Tensor:
    """``(U, N_router)`` per-expert scores -> the kept experts' ``(U, N)``
    (``columns``, see :func:`~.expert_pruning.keep_experts`; None: all)."""
    if columns is None:
        return scores
    return scores.index_select(1, columns)


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


def balance_loss(routing: Routing, slot_ends: torch.Tensor,
                 weight: float) -> torch.Tensor:
    """``weight * (cv^2(importance) + cv^2(load))`` over the units, a
    float32 scalar.

    importance: per-expert sum of gates; load: per-expert unit count, or
    with noisy gating (and k < N) the smooth expected count.

    Args:
        routing: The units' decision.
        slot_ends: ``(N,)`` int32 cumulative count of units per expert.
        weight: ``w``.
    """
    num_experts = slot_ends.shape[0]
    top_k = routing.expert_index.shape[1]
    importance = routing.gates.new_zeros(num_experts).index_add_(
        0, routing.expert_index.flatten(), routing.gates.flatten())
    if routing.noise_std is not None and top_k < num_experts:
        load = probability_in_top_k(routing.clean_logits, routing.noisy_logits,
                                    routing.noise_std, routing.ranked_logits,
                                    top_k).sum(dim=0)
    else:
        load = torch.diff(slot_ends.float(), prepend=slot_ends.new_zeros(1))
    return weight * squared_coefficient_of_variation(
        torch.stack([importance, load])).sum()
