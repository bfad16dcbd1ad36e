from . import backbones, detectors, layers  # noqa: F401
