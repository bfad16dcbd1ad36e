"""Training machinery: Dynamic Sub-module Optimisation (DSO)."""
from .hooks import DSOHook
from .optimizers import SHARED, SubModuleOptimWrapperConstructor

__all__ = ['DSOHook', 'SHARED', 'SubModuleOptimWrapperConstructor']
