from .sub_module_optim_constructor import (SHARED,
                                           SubModuleOptimWrapperConstructor)

__all__ = ['SHARED', 'SubModuleOptimWrapperConstructor']
