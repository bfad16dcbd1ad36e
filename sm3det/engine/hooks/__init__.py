from .dso_hook import DSOHook
from .expert_usage_hook import ExpertUsageHook
from .kernel_backend_hook import KernelBackendHook
from .non_finite_guard_hook import NonFiniteGuardHook
from .resumable_checkpoint_hook import ResumableCheckpointHook

__all__ = [
    'DSOHook', 'ExpertUsageHook', 'KernelBackendHook', 'NonFiniteGuardHook',
    'ResumableCheckpointHook'
]
