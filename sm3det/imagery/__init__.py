"""Image reading with numpy and OpenCV only: sensor images of any depth as
8-bit BGR (``sensor_scaling.py``) and large images read one window at a
time (``large_image.py``).

Shared by the training and inference pipelines and by the ONNX runtime
(``sm3det.deploy``), which must run without torch and the OpenMMLab stack:
nothing here imports them.
"""
from .inputs import IMAGE_EXTENSIONS, image_sources
from .large_image import (READABLE_CHANNELS, ImageWindows, check_image_shape,
                          open_image)
from .sensor_scaling import (FIT_PIXELS, SensorScaling, UnscaledImageError,
                             ValueRange, decode_image, fit_stride,
                             to_three_channels, unreadable)

__all__ = [
    'ImageWindows', 'open_image', 'check_image_shape', 'READABLE_CHANNELS',
    'SensorScaling', 'UnscaledImageError', 'ValueRange', 'FIT_PIXELS',
    'decode_image', 'fit_stride', 'to_three_channels', 'unreadable',
    'IMAGE_EXTENSIONS', 'image_sources'
]
