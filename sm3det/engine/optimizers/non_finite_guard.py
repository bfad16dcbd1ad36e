"""Optimizer wrappers that skip a step whose loss or gradient is not finite.

One NaN or inf in a loss (fp16 overflow, a degenerate box) or in a gradient
would otherwise reach AdamW's moments and every weight. These wrappers
decide at each optimizer step (the last backward of an accumulation window,
``accumulative_counts``) whether the window's losses and the gradients are
finite; if not, the step is skipped: the weights and the optimizer state
stay as they were and the gradients are cleared. The decision is the same on
every process (reduced over them), as DDP needs.

``NonFiniteGuardHook`` logs each skip with its losses and images and stops
the run after too many in a row.
"""
import torch
from mmengine.dist import all_reduce
from mmengine.optim import AmpOptimWrapper, OptimWrapper
from mmengine.registry import OPTIM_WRAPPERS  # mmrotate has no child of it


class SkipNonFiniteMixin:
    """Skip logic shared by the fp32 and the AMP wrapper.

    Attributes:
        skipped_steps (int): steps skipped so far (saved in the optimizer's
            state dict).
        consecutive_skips (int): steps skipped since the last one taken.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.skipped_steps = 0
        self.consecutive_skips = 0
        self._window_finite = True

    def backward(self, loss: torch.Tensor, **kwargs) -> None:
        # Still backpropagated: under DDP every process must join the
        # gradient all-reduce.
        self._window_finite &= bool(torch.isfinite(loss.detach()).all())
        super().backward(loss, **kwargs)

    def _gradients_finite(self) -> bool:
        grads = [
            p.grad for group in self.optimizer.param_groups
            for p in group['params'] if p.grad is not None
        ]
        return not grads or bool(
            torch.isfinite(torch.nn.utils.get_total_norm(grads)))

    def step(self, **kwargs) -> None:
        finite = torch.tensor(
            float(self._window_finite and self._gradients_finite()))
        all_reduce(finite, op='min')  # a no-op in a single process
        self._window_finite = True
        if finite.item() == 1.0:
            super().step(**kwargs)
            self.consecutive_skips = 0
        else:
            self.skipped_steps += 1
            self.consecutive_skips += 1

    def state_dict(self) -> dict:
        state = super().state_dict()
        state['skipped_steps'] = self.skipped_steps
        state['consecutive_skips'] = self.consecutive_skips
        return state

    def load_state_dict(self, state_dict: dict) -> None:
        state_dict = dict(state_dict)
        self.skipped_steps = state_dict.pop('skipped_steps', 0)
        self.consecutive_skips = state_dict.pop('consecutive_skips', 0)
        super().load_state_dict(state_dict)


@OPTIM_WRAPPERS.register_module()
class SkipNonFiniteOptimWrapper(SkipNonFiniteMixin, OptimWrapper):
    """``OptimWrapper`` (fp32; same arguments) that skips a step whose
    window's loss or whose gradients are not finite."""


@OPTIM_WRAPPERS.register_module()
class SkipNonFiniteAmpOptimWrapper(SkipNonFiniteMixin, AmpOptimWrapper):
    """``AmpOptimWrapper`` (same arguments) that skips a step whose window's
    loss is not finite, without touching the loss scale (a NaN loss is no
    scale overflow).

    Inf gradients from too high a loss scale are left to the grad scaler,
    which skips those steps and lowers the scale as usual; they are not
    counted as skipped here.
    """

    def _gradients_finite(self) -> bool:
        return True  # the grad scaler's business (see above)
