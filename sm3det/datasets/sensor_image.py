"""Sensor images (8-bit, 16-bit, float; one or three channels) loaded as
the 3-channel 8-bit BGR images the models are trained on.

:class:`LoadSensorImage` reads images at their stored depth and maps
anything that is not 8-bit to 0-255 with a configured ``SensorScaling`` (or
stops, naming the file, its dtype and the option); 8-bit images are read
exactly as ``LoadImageFromFile`` reads them. The reading and scaling
themselves (numpy and OpenCV only, shared with the ONNX runtime) are in
``sm3det/imagery/sensor_scaling.py``; the options are described in
``docs/sensor_inputs.md``.
"""
from typing import Optional

import numpy as np
from mmcv.transforms import LoadImageFromFile
from mmengine import fileio
from mmrotate.registry import TRANSFORMS

from ..imagery import SensorScaling, decode_image, to_three_channels


@TRANSFORMS.register_module()
class LoadSensorImage(LoadImageFromFile):
    """Load an image of any sensor as a (H, W, 3) 8-bit BGR image.

    Reads ``results['img_path']`` at its stored depth (or takes
    ``results['img']`` when the caller gives an array: the inferencer),
    repeats one channel to three, drops alpha, and maps images that are not
    8-bit to 0-255 by ``scaling`` (see :class:`SensorScaling`). 8-bit
    images are unchanged: bit-identical to mmcv's ``LoadImageFromFile``
    with ``color_type='color'``.

    Args:
        scaling: ``None`` (an image that is not 8-bit is an error naming
            the file, its dtype and this option),
            ``dict(type='percentile', low=1.0, high=99.0)`` (per-image
            robust min/max stretch, percentiles) or
            ``dict(type='db', low=-20.0, high=10.0, power=False)``
            (amplitude, or power with ``power=True``, in dB; fixed dB range).
            Use the same in the training and test pipelines.
        to_float32: return float32 (values still 0-255).
        color_type: only 'color' (the images are always 3-channel BGR);
            accepted so that pipelines written for ``LoadImageFromFile``
            build.
        backend_args: mmengine file backend arguments.

    Raises:
        ValueError: an unreadable file (empty, truncated JPEG, not an
            image), naming it; :class:`UnscaledImageError` for an image that
            is not 8-bit when ``scaling`` is None.
    """

    def __init__(self,
                 scaling: Optional[dict] = None,
                 to_float32: bool = False,
                 color_type: str = 'color',
                 *,
                 backend_args: Optional[dict] = None) -> None:
        if color_type != 'color':
            raise ValueError('LoadSensorImage reads 3-channel BGR images '
                             f"(color_type='color'), got {color_type!r}")
        super().__init__(to_float32=to_float32, backend_args=backend_args)
        self.scaling = SensorScaling(scaling)

    def transform(self, results: dict) -> dict:
        """Set ``img`` (H, W, 3), ``img_shape`` and ``ori_shape``."""
        img, name = results.get('img'), results.get('img_path')
        if img is None:
            img = decode_image(
                fileio.get(name, backend_args=self.backend_args), name)
        else:
            img = to_three_channels(np.asarray(img), name or 'array')
        img = self.scaling(img, name or 'array')
        results['img'] = img.astype(np.float32) if self.to_float32 else img
        results['img_shape'] = results['ori_shape'] = img.shape[:2]
        return results

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(scaling={self.scaling!r}, '
                f'to_float32={self.to_float32}, '
                f'backend_args={self.backend_args})')
