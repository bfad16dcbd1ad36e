"""Training machinery: Dynamic Sub-module Optimisation (DSO); exact and
instant resume, atomic checkpoints and the skipping of non-finite steps; the
recipe's optimizer step on any number of GPUs."""
from .hooks import DSOHook, NonFiniteGuardHook, ResumableCheckpointHook
from .images_per_step_runner import ImagesPerStepRunner
from .optimizers import (SHARED, SkipNonFiniteAmpOptimWrapper,
                         SkipNonFiniteOptimWrapper,
                         SubModuleOptimWrapperConstructor)
from .resumable_loop import ResumableIterBasedTrainLoop

__all__ = [
    'DSOHook', 'SHARED', 'SubModuleOptimWrapperConstructor',
    'NonFiniteGuardHook', 'ResumableCheckpointHook',
    'SkipNonFiniteOptimWrapper', 'SkipNonFiniteAmpOptimWrapper',
    'ResumableIterBasedTrainLoop', 'ImagesPerStepRunner'
]
