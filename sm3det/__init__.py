"""SM3Det: one detector for SAR, optical and infrared remote sensing images.

Importing this package applies the stack's compatibility fixes and registers
every module into MMRotate 1.x's registries (mmdet modules as ``mmdet.X``).
"""
from . import apis  # noqa: F401,E402  (inference; needs the modules above)
from . import compat  # noqa: F401  (must run before mmrotate is imported)
from . import datasets, engine, evaluation, models, utils  # noqa: F401,E402

__version__ = '0.1.0'
