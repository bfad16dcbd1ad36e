"""Images of any sensor (8-bit, 16-bit, float; one or three channels) as
the 3-channel 8-bit BGR images the models are trained on: numpy and OpenCV
only.

SAR products are often 16-bit or float32 amplitude, one channel. OpenCV's
colour reading (mmcv's ``LoadImageFromFile``) divides 16-bit values by 256
and refuses float one-channel TIFFs, so such an image reaches the model
nearly black or not at all. :func:`decode_image` reads images at their
stored depth, :func:`to_three_channels` brings them to 3 channels and
:class:`SensorScaling` maps anything that is not 8-bit to 0-255 as
configured (or stops, naming the image, its dtype and the option). The
pipeline transform ``LoadSensorImage`` (``sm3det/datasets/sensor_image.py``)
and the ONNX runtime (``sm3det/deploy``) both read images with these; the
options are described in ``docs/sensor_inputs.md``.
"""
import math
from typing import Optional, Tuple

import cv2
import numpy as np

#: A percentile stretch is estimated from at most this many pixels: larger
#: images are sampled every k-th row and column.
FIT_PIXELS = 2**22
#: (value mapped to 0, value mapped to 255) of a scaling, dB for 'db'.
ValueRange = Tuple[float, float]
#: File signatures of TIFF and BigTIFF, little and big endian.
TIFF_SIGNATURES = (b'II*\x00', b'MM\x00*', b'II+\x00', b'MM\x00+')


class UnscaledImageError(ValueError):
    """An image that is not 8-bit while no scaling is configured: a
    configuration error (training stops on it), not a broken file."""


def unreadable(name: str, reason: str) -> ValueError:
    """The error for an image file that cannot be read."""
    return ValueError(f'cannot read image {name}: {reason}')


def fit_stride(height: int, width: int) -> int:
    """Row and column step of the sample a scaling is estimated from."""
    return max(1, math.ceil(math.sqrt(height * width / FIT_PIXELS)))


class SensorScaling:
    """How an image that is not 8-bit becomes 8-bit-equivalent (0-255).

    8-bit (uint8) images are never changed. Any other dtype (uint16, int16,
    uint32, int32, float32, float64) is mapped to uint8 by ``cfg``:

    * ``None``: no scaling; such an image is an :class:`UnscaledImageError`
      naming the image, its dtype and this option.
    * ``dict(type='percentile', low=1.0, high=99.0)``: per image, the values
      at the ``low`` and ``high`` percentiles (all channels together,
      finite values only) map to 0 and 255, linearly in between, clipped.
      Percentiles are estimated from at most :data:`FIT_PIXELS` pixels on a
      regular grid.
    * ``dict(type='db', low=..., high=..., power=False)``: amplitude in dB,
      ``10 * log10(v ** 2)`` (``10 * log10(v)`` with ``power=True``, for
      intensity products); ``low`` and ``high`` dB map to 0 and 255,
      linearly in between, clipped.

    NaN and -inf (no-data, log of 0) become 0.
    """

    DEFAULTS = dict(
        percentile=dict(low=1.0, high=99.0),
        db=dict(low=None, high=None, power=False))

    def __init__(self, cfg: Optional[dict]) -> None:
        self.type = self.cfg = None
        if cfg is None:
            return
        options = dict(cfg)
        kind = options.pop('type', None)
        if kind not in self.DEFAULTS:
            raise ValueError(f'scaling type must be one of '
                             f'{list(self.DEFAULTS)}, got {kind!r}')
        unknown = set(options) - set(self.DEFAULTS[kind])
        if unknown:
            raise ValueError(f'{kind} scaling has no option '
                             f'{sorted(unknown)}; it takes '
                             f'{list(self.DEFAULTS[kind])}')
        self.type, self.cfg = kind, {**self.DEFAULTS[kind], **options}
        low, high = self.cfg['low'], self.cfg['high']
        if low is None or high is None or not low < high:
            raise ValueError(f'{kind} scaling needs low < high, got '
                             f'low={low}, high={high}')
        if kind == 'percentile' and not 0 <= low < high <= 100:
            raise ValueError('percentile scaling takes percentiles in '
                             f'[0, 100], got low={low}, high={high}')

    def __repr__(self) -> str:
        if self.cfg is None:
            return 'None'
        return repr(dict(type=self.type, **self.cfg))

    def check(self, dtype: np.dtype, name: str) -> None:
        """Raise :class:`UnscaledImageError` for a non-8-bit ``dtype``
        when no scaling is configured."""
        if np.dtype(dtype) != np.uint8 and self.cfg is None:
            raise UnscaledImageError(
                f'image {name} is {np.dtype(dtype).name}, not 8-bit, and '
                'the loader has no scaling: set its scaling option, e.g. '
                "scaling=dict(type='percentile', low=1.0, high=99.0) "
                '(docs/sensor_inputs.md)')

    def _values(self, img: np.ndarray) -> np.ndarray:
        """``img`` as float32 in the domain the range applies to."""
        values = img.astype(np.float32)
        if self.type == 'db':
            with np.errstate(divide='ignore', invalid='ignore'):
                values = (10 if self.cfg['power'] else 20) * np.log10(
                    values if self.cfg['power'] else np.abs(values))
        return values

    def value_range(self, sample: np.ndarray) -> ValueRange:
        """The range for an image of which ``sample`` is a (strided)
        sample."""
        if self.type == 'db':
            return float(self.cfg['low']), float(self.cfg['high'])
        values = self._values(sample)
        values = values[np.isfinite(values)]
        if values.size == 0:
            return 0.0, 0.0
        low, high = np.percentile(values, [self.cfg['low'], self.cfg['high']])
        return float(low), float(high)

    def apply(self, img: np.ndarray, value_range: ValueRange) -> np.ndarray:
        """``img`` (any dtype) mapped to uint8 by ``value_range``; a
        range of zero width gives 0."""
        low, high = value_range
        gain = 255.0 / (high - low) if high > low else 0.0
        scaled = np.clip((self._values(img) - low) * gain, 0, 255)
        return np.nan_to_num(np.rint(scaled), nan=0.0).astype(np.uint8)

    def __call__(self, img: np.ndarray, name: str) -> np.ndarray:
        """``img`` unchanged if uint8, else scaled to uint8 by its own
        range (or :class:`UnscaledImageError`)."""
        if img.dtype == np.uint8:
            return img
        self.check(img.dtype, name)
        step = fit_stride(*img.shape[:2])
        return self.apply(img, self.value_range(img[::step, ::step]))


def to_three_channels(img: np.ndarray, name: str) -> np.ndarray:
    """(H, W), (H, W, 1), (H, W, 3) or (H, W, 4) -> (H, W, 3): one channel
    repeated, alpha dropped (as OpenCV's colour reading does)."""
    if img.ndim == 2:
        img = img[..., None]
    if img.ndim != 3 or img.shape[2] not in (1, 3, 4):
        raise ValueError(
            f'image {name} has shape {img.shape}; expected (H, W) or (H, W, '
            'C) with 1 or 3 channels (a 4th, alpha, is dropped)')
    if img.shape[2] == 1:
        return np.repeat(img, 3, axis=2)
    return img[..., :3] if img.shape[2] == 4 else img


def _truncated_jpeg(content: bytes) -> bool:
    """A JPEG without an end-of-image marker after its last scan (OpenCV
    4 decodes such a file partially, with only a warning)."""
    return content[:2] == b'\xff\xd8' and content.rfind(
        b'\xff\xd9') < content.rfind(b'\xff\xda')


def decode_image(content: bytes, name: str) -> np.ndarray:
    """Decode image file bytes to (H, W, 3) BGR at the stored dtype.

    TIFFs are read as stored (OpenCV's colour reading rejects float
    one-channel TIFFs) and brought to 3 channels; every other format is
    read by OpenCV's colour reading at the stored depth, which for 8-bit
    images is exactly mmcv's ``LoadImageFromFile`` reading.

    Raises:
        ValueError: empty file, truncated JPEG, or data OpenCV cannot
            decode, naming ``name``.
    """
    if not content:
        raise unreadable(name, 'empty file (0 bytes)')
    if _truncated_jpeg(content):
        raise unreadable(
            name, 'truncated JPEG (no end-of-image marker after its '
            'last scan)')
    buffer = np.frombuffer(content, np.uint8)
    tiff = content[:4] in TIFF_SIGNATURES
    flags = cv2.IMREAD_UNCHANGED if tiff else (cv2.IMREAD_COLOR
                                               | cv2.IMREAD_ANYDEPTH)
    img = cv2.imdecode(buffer, flags)
    if img is None:
        raise unreadable(
            name, 'not an image OpenCV decodes, or a truncated or '
            'damaged one')
    return to_three_channels(img, name) if tiff else img
