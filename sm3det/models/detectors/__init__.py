from .sm3det import SM3Det
from .stock_detector import (build_stock_detector, resolve_stock_detectors,
                             stock_detector_cfg)

__all__ = [
    'SM3Det', 'build_stock_detector', 'stock_detector_cfg',
    'resolve_stock_detectors'
]
