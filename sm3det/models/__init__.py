from . import backbones, detectors, layers, losses, roi_heads  # noqa: F401
