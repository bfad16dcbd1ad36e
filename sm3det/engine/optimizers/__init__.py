from .non_finite_guard import (SkipNonFiniteAmpOptimWrapper,
                               SkipNonFiniteOptimWrapper)
from .sub_module_optim_constructor import (SHARED,
                                           SubModuleOptimWrapperConstructor)

__all__ = [
    'SHARED', 'SubModuleOptimWrapperConstructor', 'SkipNonFiniteOptimWrapper',
    'SkipNonFiniteAmpOptimWrapper'
]
