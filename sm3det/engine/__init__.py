"""Training machinery: Dynamic Sub-module Optimisation (DSO); exact and
instant resume, atomic checkpoints and the skipping of non-finite steps."""
from .hooks import DSOHook, NonFiniteGuardHook, ResumableCheckpointHook
from .optimizers import (SHARED, SkipNonFiniteAmpOptimWrapper,
                         SkipNonFiniteOptimWrapper,
                         SubModuleOptimWrapperConstructor)
from .resumable_loop import ResumableIterBasedTrainLoop

__all__ = [
    'DSOHook', 'SHARED', 'SubModuleOptimWrapperConstructor',
    'NonFiniteGuardHook', 'ResumableCheckpointHook',
    'SkipNonFiniteOptimWrapper', 'SkipNonFiniteAmpOptimWrapper',
    'ResumableIterBasedTrainLoop'
]
