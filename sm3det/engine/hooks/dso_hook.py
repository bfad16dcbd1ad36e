"""Dynamic Sub-module Optimisation (DSO): per-sub-module learning rates.

DSO changes learning rates, not losses. After every iteration it compares each
loss term with its exponential moving average (EMA):

* head policy: ``w_i = his_L_i / cur_L_i`` is large for a term that is
  currently below its history (it converges fast);
  ``lambda_i = n * softmax_i(w_i / theta)``; a task head's sub-module (e.g.
  the DOTA RPN) gets the mean ``lambda`` of its loss terms;
* backbone policy: ``C = 1 - KL`` between the softmax of the current and of
  the historical loss vector measures how consistent the loss distribution is
  with its history; ``gamma = 2 * sigmoid((C - b) * tau)`` in (0, 2) scales
  the learning rate of the shared parameters (backbone, MoE routers, neck).

Two variants (``variant``):

* ``'reference'`` (default; the authors' implementation, which produced the
  published numbers): the softmax runs over the individual loss terms, and
  ``KL = kl_div(log P(cur), P(his), reduction='batchmean')``, i.e.
  ``KL(P(his) || P(cur)) / n``.
* ``'paper'``: the softmax runs over the sub-modules, each represented by the
  sum of its loss terms, and ``KL = KL(P(cur) || P(his))``. To get the paper's
  one-entry-per-task softmax, configure one sub-module per task head.

Both use the EMA from before the current losses are added; a term's EMA starts
at its first observed value.
"""
import math
from typing import Dict, List, Optional, Sequence

import torch
import torch.nn.functional as F
from mmengine.dist import all_gather_object
from mmengine.hooks import Hook, ParamSchedulerHook
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper
from mmengine.optim import OptimWrapper
from mmengine.runner import get_priority
from mmrotate.registry import HOOKS

from ...models.losses.loss_groups import group_loss_keys, sub_module_of_loss
from ..optimizers.sub_module_optim_constructor import SHARED

VARIANTS = ('reference', 'paper')


def head_policy_weights(cur: torch.Tensor, his: torch.Tensor,
                        theta: float) -> torch.Tensor:
    """Head-policy weights ``lambda = n * softmax(his / cur / theta)``.

    Args:
        cur (Tensor): current losses, shape (n,), positive.
        his (Tensor): their EMA before this iteration, shape (n,).
        theta (float): softmax temperature.

    Returns:
        Tensor: shape (n,), mean 1: above 1 for fast-converging losses.
    """
    return cur.numel() * torch.softmax(his / cur / theta, dim=0)


def loss_consistency(cur: torch.Tensor, his: torch.Tensor,
                     variant: str) -> float:
    """``C = 1 - KL`` between the softmax distributions of two loss vectors.

    Args:
        cur (Tensor): current losses, shape (n,).
        his (Tensor): their EMA before this iteration, shape (n,).
        variant (str): ``'reference'``: ``KL(P(his) || P(cur)) / n``
            (PyTorch's ``kl_div(log P(cur), P(his), 'batchmean')``);
            ``'paper'``: ``KL(P(cur) || P(his))``.
    """
    if variant == 'reference':
        kl = F.kl_div(
            torch.log_softmax(cur, dim=0),
            torch.softmax(his, dim=0),
            reduction='batchmean')
    else:
        kl = F.kl_div(
            torch.log_softmax(his, dim=0),
            torch.softmax(cur, dim=0),
            reduction='sum')
    return 1.0 - float(kl)


def backbone_policy_gamma(consistency: float, b: float, tau: float) -> float:
    """``gamma = 2 * sigmoid((C - b) * tau)``: 1 when ``C == b``."""
    return 2.0 / (1.0 + math.exp(-(consistency - b) * tau))


@HOOKS.register_module()
class DSOHook(Hook):
    """Scale each sub-module's learning rate by the DSO multipliers.

    The optimizer's parameter groups must carry ``group['sub_module']``
    (built by ``SubModuleOptimWrapperConstructor``); the hook multiplies the
    learning rate of the groups of sub-module ``s`` by its head-policy
    multiplier and that of the ``'shared'`` groups by the backbone-policy
    ``gamma``.

    Timing: in mmengine the optimizer steps inside ``model.train_step``, before
    ``after_train_iter`` sees the losses, so the multipliers computed from
    iteration t's losses scale iteration t+1's step (a one-iteration lag, the
    convention of mmengine's own parameter schedulers too). During the first
    ``warmup_iters`` iterations the EMA is updated but every multiplier is 1.

    Scheduling: the multiplier is applied in ``before_train_iter`` on top of
    the scheduled learning rate (kept in ``group['scheduled_lr']``) and taken
    off again in ``after_train_iter``, before ``ParamSchedulerHook`` (priority
    LOW) steps, so chained schedulers (LinearLR, MultiStepLR) never see a
    multiplied value and multipliers never compound across iterations.

    Missing data: a loss term absent from an iteration's losses (its dataset
    is not in the batch), non-finite or not positive (``his / cur`` is
    undefined) is left out of that iteration: its EMA is unchanged, the
    softmax and the KL run over the present terms only, and a sub-module
    without any present term keeps multiplier 1.

    Distributed training: the loss terms are averaged over all processes
    before use, so every process applies the same learning rates.

    State: the EMA of every term, the update count and the current
    multipliers are saved as ``checkpoint['dso']`` and restored by
    ``after_load_checkpoint`` (also when a checkpoint is given as
    ``load_from``, as mmengine's ``EMAHook`` does).

    The applied multipliers are published every iteration as the message hub
    scalars ``train/dso_<sub_module>`` and ``train/dso_shared``, so the
    logger writes them at every logging interval.

    Sub-modules: by default the model's own ``sub_modules`` (SM3Det derives
    them from its ``tasks``: one per single-stage head, RPN and RoI head of
    a two-stage one, each with fnmatch patterns of its loss keys), the same
    ones ``SubModuleOptimWrapperConstructor`` tags the parameter groups
    with. A loss key goes to the first sub-module whose pattern matches it;
    unmatched keys (``dota.acc``, ``loss_moe_balance``) are no DSO terms.

    Args:
        loss_terms (dict[str, list[str]], optional): sub-module name ->
            names or fnmatch patterns of its loss terms (keys of the model's
            log_vars, e.g. ``dict(dota_rpn=['dota.loss_rpn_*'])``). The names
            must be the optimizer's sub-module tags. None (default): the
            model's ``sub_modules``, resolved in ``before_run``.
        alpha (float): EMA rate: ``his <- alpha * cur + (1 - alpha) * his``.
        theta (float): temperature of the head policy's softmax.
        tau (float): slope of the backbone policy's sigmoid.
        b (float): consistency at which the backbone policy gives 1.
        warmup_iters (int): iterations without multipliers at the start.
        head_policy (bool): apply the head policy (else head multipliers 1).
        backbone_policy (bool): apply the backbone policy (else gamma 1).
        variant (str): ``'reference'`` or ``'paper'`` (see module docstring).
    """

    # Must run before ParamSchedulerHook ('LOW') in after_train_iter.
    priority = 'NORMAL'

    def __init__(self,
                 loss_terms: Optional[Dict[str, Sequence[str]]] = None,
                 alpha: float = 0.001,
                 theta: float = 3.0,
                 tau: float = 3.0,
                 b: float = 0.4,
                 warmup_iters: int = 500,
                 head_policy: bool = True,
                 backbone_policy: bool = True,
                 variant: str = 'reference'):
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f'alpha must lie in [0, 1], got {alpha}')
        if theta <= 0:
            raise ValueError(f'theta must be positive, got {theta}')
        if variant not in VARIANTS:
            raise ValueError(f'variant must be one of {VARIANTS}, '
                             f'got {variant!r}')
        self.loss_terms = None
        if loss_terms is not None:
            self._set_loss_terms(loss_terms)
        self.alpha = alpha
        self.theta = theta
        self.tau = tau
        self.b = b
        self.warmup_iters = warmup_iters
        self.use_head_policy = head_policy
        self.use_backbone_policy = backbone_policy
        self.variant = variant

        self.loss_ema: Dict[str, float] = {}
        self.num_updates = 0
        self.multipliers = self._neutral_multipliers()

    def _set_loss_terms(self, loss_terms: Dict[str, Sequence[str]]) -> None:
        """Check and keep ``{sub-module: loss term names or patterns}``."""
        if not isinstance(loss_terms, dict) or not loss_terms:
            raise ValueError('loss_terms must be a non-empty dict from '
                             'sub-module name to its loss term names')
        if SHARED in loss_terms:
            raise ValueError(f"'{SHARED}' names the parameters outside every "
                             'sub-module; it has no loss terms of its own')
        seen = set()
        for name, terms in loss_terms.items():
            if isinstance(terms, str) or not terms:
                raise ValueError(f'loss_terms[{name!r}] must be a non-empty '
                                 f'list of loss names, got {terms!r}')
            if seen & set(terms):
                raise ValueError(f'loss term(s) {sorted(seen & set(terms))} '
                                 'are given to more than one sub-module')
            seen.update(terms)
        self.loss_terms = {
            name: tuple(terms)
            for name, terms in loss_terms.items()
        }
        self._group_of: Dict[str, Optional[str]] = {}

    def _resolve_loss_terms(self, runner) -> None:
        """Take the model's ``sub_modules`` when no loss_terms were given."""
        if self.loss_terms is not None:
            return
        model = runner.model
        model = model.module if is_model_wrapper(model) else model
        sub_modules = getattr(model, 'sub_modules', None)
        if not isinstance(sub_modules, dict) or not sub_modules:
            raise ValueError(
                f'DSOHook: {type(model).__name__} has no `sub_modules` to '
                'take the loss terms from (SM3Det derives them from its '
                "tasks); give loss_terms, e.g. dict(sar_head=['sar.loss_*'])")
        self._set_loss_terms({
            name: sub_module.losses
            for name, sub_module in sub_modules.items()
        })
        self.multipliers = self._neutral_multipliers()

    def group_of(self, term: str) -> Optional[str]:
        """The sub-module of a loss key (None: not a DSO term)."""
        if term not in self._group_of:
            self._group_of[term] = sub_module_of_loss(term, self.loss_terms)
        return self._group_of[term]

    def _neutral_multipliers(self) -> Dict[str, float]:
        return {name: 1.0 for name in [*(self.loss_terms or {}), SHARED]}

    # ------------------------------------------------------------ the policy
    def update(self, losses: Dict[str, float]) -> Dict[str, float]:
        """Observe one iteration's losses; return the next multipliers.

        Args:
            losses (dict[str, float]): present loss terms, name -> value.
                Terms that are not configured are ignored.

        Returns:
            dict[str, float]: sub-module name (and ``'shared'``) ->
            multiplier of its learning rate for the next iteration.
        """
        if self.loss_terms is None:
            raise RuntimeError(
                'DSOHook has no sub-modules yet: give loss_terms or let the '
                "runner's before_run take them from the model")
        present = {
            term: value
            for term, value in losses.items()
            if self.group_of(term) is not None and math.isfinite(value)
            and value > 0
        }
        for term, value in present.items():
            self.loss_ema.setdefault(term, value)  # first observation
        self.num_updates += 1

        multipliers = self._neutral_multipliers()
        if present and self.num_updates >= self.warmup_iters:
            multipliers.update(self._policy_multipliers(present))
        for term, value in present.items():
            self.loss_ema[term] = (
                self.alpha * value + (1 - self.alpha) * self.loss_ema[term])
        self.multipliers = multipliers
        return multipliers

    def _policy_multipliers(self, present: Dict[str,
                                                float]) -> Dict[str, float]:
        """Both policies on the present terms, with the EMA before update."""
        # The softmax units, as tuples of terms: one per term (reference) or
        # one per sub-module, its terms summed (paper). A sub-module's
        # multiplier is the mean lambda of its units.
        units_of = {}
        for name, terms in group_loss_keys(sorted(present),
                                           self.loss_terms).items():
            terms = tuple(terms)
            if terms:
                units_of[name] = ([(term, ) for term in terms]
                                  if self.variant == 'reference' else [terms])
        units = [unit for unit_list in units_of.values() for unit in unit_list]
        cur = torch.tensor([sum(present[t] for t in unit) for unit in units],
                           dtype=torch.float64)
        his = torch.tensor(
            [sum(self.loss_ema[t] for t in unit) for unit in units],
            dtype=torch.float64)

        multipliers = {}
        if self.use_head_policy:
            lam = head_policy_weights(cur, his, self.theta).tolist()
            lam = dict(zip(units, lam))
            for name, unit_list in units_of.items():
                multipliers[name] = sum(lam[u]
                                        for u in unit_list) / len(unit_list)
        if self.use_backbone_policy:
            consistency = loss_consistency(cur, his, self.variant)
            multipliers[SHARED] = backbone_policy_gamma(
                consistency, self.b, self.tau)
        return multipliers

    # ------------------------------------------------------------ the hook
    @staticmethod
    def _param_groups(runner) -> List[dict]:
        return runner.optim_wrapper.optimizer.param_groups

    def before_run(self, runner) -> None:
        """Resolve the sub-modules before a checkpoint's state is loaded."""
        self._resolve_loss_terms(runner)

    def before_train(self, runner) -> None:
        """Check that the optimizer and the hook order support DSO."""
        self._resolve_loss_terms(runner)
        if not isinstance(runner.optim_wrapper, OptimWrapper):
            raise TypeError('DSOHook supports a single optimizer '
                            '(OptimWrapper or AmpOptimWrapper), got '
                            f'{type(runner.optim_wrapper).__name__}')
        tags = {g.get('sub_module') for g in self._param_groups(runner)}
        if None in tags:
            raise ValueError(
                "DSOHook needs parameter groups tagged with 'sub_module': set "
                "optim_wrapper.constructor='SubModuleOptimWrapperConstructor'"
                ' with paramwise_cfg.sub_modules')
        head_tags = tags - {SHARED}
        if head_tags != set(self.loss_terms):
            raise ValueError(
                'DSOHook loss_terms must name exactly the sub-modules of the '
                f'optimizer groups: groups have {sorted(head_tags)}, '
                f'loss_terms has {sorted(self.loss_terms)}')
        for hook in runner.hooks:
            if isinstance(hook, ParamSchedulerHook) and get_priority(
                    hook.priority) <= get_priority(self.priority):
                raise ValueError(
                    'DSOHook must run before ParamSchedulerHook in '
                    'after_train_iter (to hand the scheduler the un-multiplied'
                    ' lr): give it a higher priority than '
                    f'{hook.priority!r}, got {self.priority!r}')

    def before_train_iter(self,
                          runner,
                          batch_idx: int,
                          data_batch=None) -> None:
        """Multiply each group's scheduled lr by its sub-module's factor."""
        for group in self._param_groups(runner):
            group['scheduled_lr'] = group['lr']
            group['lr'] = group['lr'] * self.multipliers[group['sub_module']]
        for name, value in self.multipliers.items():
            runner.message_hub.update_scalar(f'train/dso_{name}', value)

    def after_train_iter(self,
                         runner,
                         batch_idx: int,
                         data_batch=None,
                         outputs: Optional[dict] = None) -> None:
        """Restore the scheduled lr, then observe this iteration's losses."""
        for group in self._param_groups(runner):
            group['lr'] = group['scheduled_lr']
        if outputs is None:
            return
        if self.num_updates == 0:
            self._warn_missing_terms(outputs)
        self.update(self._mean_over_processes(outputs))

    def _mean_over_processes(self, outputs: dict) -> Dict[str, float]:
        """Each DSO term's value averaged over the processes that have it
        (all processes must use the same learning rates)."""
        local = {
            term: float(torch.as_tensor(value).detach())
            for term, value in outputs.items()
            if self.group_of(term) is not None
        }
        # The processes' batches may hold different datasets, hence terms:
        # gather the dicts (a one-element list outside distributed training).
        sums, counts = {}, {}
        for process_terms in all_gather_object(local):
            for term, value in process_terms.items():
                sums[term] = sums.get(term, 0.0) + value
                counts[term] = counts.get(term, 0) + 1
        return {term: sums[term] / counts[term] for term in sums}

    def _warn_missing_terms(self, outputs: dict) -> None:
        groups = group_loss_keys(outputs, self.loss_terms)
        missing = [name for name, terms in groups.items() if not terms]
        if missing:
            print_log(
                f'DSOHook: sub-modules {missing} have no loss term in the '
                'first iteration\'s losses (fine if their dataset was not in '
                'the batch; otherwise check loss_terms / the tasks\' '
                f'sub_modules); losses: {list(outputs)}',
                logger='current',
                level='WARNING')

    def state_dict(self) -> dict:
        """Plain Python values, loadable under ``torch.load(weights_only)``.
        """
        return dict(
            loss_ema=dict(self.loss_ema),
            num_updates=self.num_updates,
            multipliers=dict(self.multipliers))

    def load_state_dict(self, state: dict) -> None:
        self.loss_ema = {
            term: value
            for term, value in state['loss_ema'].items()
            if self.loss_terms is None or self.group_of(term) is not None
        }
        self.num_updates = state['num_updates']
        self.multipliers = self._neutral_multipliers()
        self.multipliers.update({
            name: value
            for name, value in state['multipliers'].items()
            if name in self.multipliers
        })

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        checkpoint['dso'] = self.state_dict()

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        if 'dso' in checkpoint:
            self.load_state_dict(checkpoint['dso'])
