"""Images of any size, read one window at a time where the format allows.

The sliding-window mode must not hold a 20000 x 20000 scene (1.2 GB as
8-bit BGR) in memory, only a batch of patches. :func:`open_image` gives an
:class:`ImageWindows` whose ``image[y1:y2, x1:x2]`` reads just that window:

* numpy arrays (``np.memmap`` included) are sliced as they are;
* ``.npy`` files and uncompressed strip TIFFs (8-bit grey or RGB, 16-bit
  grey, as PIL and GDAL write them without compression) are memory-mapped
  per window, so a window costs its own bytes and the mapping is dropped
  afterwards;
* every other file (PNG, JPEG, compressed or tiled TIFF ...) is decoded
  whole, as the single-image pipeline's ``LoadSensorImage`` does.

Windows are 3-channel 8-bit BGR, what ``LoadSensorImage`` gives: 1-channel
images are repeated to 3 channels, and images that are not 8-bit are mapped
to 0-255 by the task's ``SensorScaling``, with one range for the whole image
(estimated from the same pixel grid as ``LoadSensorImage`` uses), so that
every window is scaled alike.
"""
import os.path as osp
from typing import Optional, Tuple, Union

import cv2
import numpy as np

from .sensor_scaling import (SensorScaling, ValueRange, decode_image,
                             fit_stride, unreadable)

#: Channel counts a window can be made of (1 is repeated to 3).
READABLE_CHANNELS = (1, 3)


class ImageWindows:
    """A (H, W, 3) 8-bit BGR image whose windows are read on demand.

    Args:
        read: ``read(y_slice, x_slice) -> (h, w, C)`` array of the source.
        shape: (H, W, C) of the source; C in :data:`READABLE_CHANNELS`.
        name: where the image comes from, for messages and output names.
        lazy: whether windows are read without the whole image in memory.
        rgb: the source stores RGB (TIFF) instead of BGR (OpenCV, arrays).
        dtype: the source's dtype; one that is not uint8 is mapped to 0-255
            by ``scaling``.
        scaling: the task loader's scaling (None: uint8 sources only).

    Raises:
        UnscaledImageError: ``dtype`` is not uint8 and there is no scaling.
    """

    def __init__(self,
                 read,
                 shape: Tuple[int, int, int],
                 name: str,
                 lazy: bool,
                 rgb: bool = False,
                 dtype: np.dtype = np.uint8,
                 scaling: Optional[SensorScaling] = None):
        self._read = read
        self.height, self.width, self.channels = shape
        self.name = name
        self.lazy = lazy
        self.rgb = rgb
        self.dtype = np.dtype(dtype)
        self.scaling = scaling or SensorScaling(None)
        self.scaling.check(self.dtype, name)
        self._value_range = None

    @property
    def shape(self) -> Tuple[int, int, int]:
        """(H, W, 3): the shape of what windows look like."""
        return self.height, self.width, 3

    def __getitem__(self, index) -> np.ndarray:
        """``image[y1:y2, x1:x2]``: that window as a (h, w, 3) uint8 BGR
        array."""
        if not (isinstance(index, tuple) and len(index) == 2
                and all(isinstance(i, slice) for i in index)):
            raise TypeError('ImageWindows reads 2-D windows, image[y1:y2, '
                            f'x1:x2]; got index {index!r}')
        window = self._stored(*index)
        if self.dtype == np.uint8:
            return window
        return self.scaling.apply(window, self.value_range())

    def _stored(self, ys: slice, xs: slice) -> np.ndarray:
        """A window as (h, w, 3) BGR at the source's dtype."""
        window = np.asarray(self._read(ys, xs))
        if window.ndim == 2:
            window = window[..., None]
        if window.shape[2] == 1:
            return np.repeat(window, 3, axis=2)
        return window[..., ::-1].copy() if self.rgb else window

    def value_range(self) -> ValueRange:
        """The scaling's range for the whole image, from the pixel grid
        ``LoadSensorImage`` samples (read once)."""
        if self._value_range is None:
            step = fit_stride(self.height, self.width)
            sample = self._stored(
                slice(0, self.height, step), slice(0, self.width, step))
            self._value_range = self.scaling.value_range(sample)
        return self._value_range

    def read_all(self) -> np.ndarray:
        """The whole image as a (H, W, 3) BGR array (decodes everything)."""
        return self[0:self.height, 0:self.width]


def check_image_shape(shape: Tuple[int, ...], name: str,
                      channels: int) -> Tuple[int, int, int]:
    """(H, W, C) of an image, or a clear error naming what is allowed."""
    if len(shape) == 2:
        shape = (*shape, 1)
    if len(shape) != 3 or shape[0] == 0 or shape[1] == 0:
        raise ValueError(f'image {name} has shape {tuple(shape)}; expected '
                         '(H, W) or (H, W, C)')
    if shape[2] not in READABLE_CHANNELS or channels != 3:
        raise ValueError(
            f'image {name} has {shape[2]} channels; the task pipeline and '
            f"the model's data preprocessor ({channels} mean values) take "
            '3-channel BGR images, or 1-channel images, which are repeated '
            'to 3 channels')
    return tuple(int(s) for s in shape)


def _memmap_reader(path: str, offset: int, dtype, shape):
    """``read(ys, xs)``: maps the file for one window, copies it out and
    unmaps it again, so that the pages read do not stay with the process."""

    def read(ys: slice, xs: slice) -> np.ndarray:
        mapped = np.memmap(
            path, dtype=dtype, mode='r', offset=offset, shape=shape)
        window = np.array(mapped[ys, xs])
        del mapped
        return window

    return read


def _npy_source(path: str) -> Tuple[int, np.dtype, tuple]:
    """(data offset, dtype, shape) of a C-ordered ``.npy`` file."""
    mapped = np.load(path, mmap_mode='r')
    found = mapped.offset, mapped.dtype, mapped.shape
    fortran = not mapped.flags.c_contiguous and mapped.ndim > 1
    del mapped
    if fortran:
        raise ValueError(f'{path} is a Fortran-ordered array; save it in C '
                         'order (np.save(path, np.ascontiguousarray(a)))')
    return found


#: PIL modes of the TIFFs read by memory mapping: (channels, dtype).
MAPPED_TIFF_MODES = {
    'L': (1, np.dtype(np.uint8)),
    'RGB': (3, np.dtype(np.uint8)),
    'I;16': (1, np.dtype('<u2')),
    'I;16B': (1, np.dtype('>u2')),
}


def _tiff_source(path: str) -> Optional[Tuple[int, np.dtype, tuple]]:
    """(offset, dtype, shape) of an uncompressed, contiguous strip TIFF of
    a :data:`MAPPED_TIFF_MODES` mode; None for any other TIFF (it is then
    decoded whole)."""
    try:
        from PIL import Image
    except ImportError:  # no Pillow (a deployment machine): decode whole
        return None
    try:
        with Image.open(path) as im:
            mode, (width, height), tiles = im.mode, im.size, im.tile
            frames = getattr(im, 'n_frames', 1)
    except Exception:  # noqa: BLE001 - not readable by PIL: decode whole
        return None
    if mode not in MAPPED_TIFF_MODES or frames != 1 or not tiles:
        return None
    channels, dtype = MAPPED_TIFF_MODES[mode]
    row_bytes = width * channels * dtype.itemsize
    first_offset = tiles[0][2]
    for codec, box, offset, args in tiles:
        rawmode = args[0] if isinstance(args, tuple) else args
        x0, y0, x1, _ = box
        if (codec != 'raw' or rawmode != mode or (x0, x1) != (0, width)
                or offset != first_offset + y0 * row_bytes):
            return None
    return first_offset, dtype, (height, width, channels)


def open_image(
        source: Union[str, np.ndarray, ImageWindows],
        channels: int = 3,
        name: Optional[str] = None,
        decode: bool = True,
        scaling: Optional[SensorScaling] = None) -> Optional[ImageWindows]:
    """Open an image path or array for window reading.

    Args:
        source: a path (``.npy``, TIFF, or any format OpenCV reads) or a
            (H, W) / (H, W, C) array in BGR order, of any dtype.
        channels: channels the model takes (its data preprocessor's mean
            values); only 3 is supported.
        name: name used in messages (default: the path, or 'array').
        decode: False only checks a file that would be decoded whole
            (exists, not empty, has a known image header) and returns None.
        scaling: how an image that is not 8-bit is mapped to 0-255 (the
            task loader's); None: such an image is an error.

    Raises:
        FileNotFoundError: the path does not exist.
        ValueError: the file is not a readable image (empty, truncated,
            unknown format), or has a channel count other than 1 or 3;
            ``UnscaledImageError`` for an image that is not 8-bit without
            ``scaling``.
    """
    if isinstance(source, ImageWindows):
        return source
    if isinstance(source, np.ndarray):
        name = name or 'array'
        shape = check_image_shape(source.shape, name, channels)
        return ImageWindows(
            lambda ys, xs: source[ys, xs],
            shape,
            name,
            lazy=True,
            dtype=source.dtype,
            scaling=scaling)
    if not isinstance(source, str):
        raise TypeError('an image is a path or a numpy array, got '
                        f'{type(source).__name__}')
    name = name or source
    if not osp.isfile(source):
        raise FileNotFoundError(f'image {source} does not exist')
    if osp.getsize(source) == 0:
        raise unreadable(source, 'empty file (0 bytes)')
    ext = osp.splitext(source)[1].lower()
    found = None
    if ext == '.npy':
        found, rgb = _npy_source(source), False
    elif ext in ('.tif', '.tiff'):
        found, rgb = _tiff_source(source), True
    if found is not None:
        offset, dtype, shape = found
        checked = check_image_shape(shape, name, channels)
        return ImageWindows(
            _memmap_reader(source, offset, dtype, shape),
            checked,
            name,
            lazy=True,
            rgb=rgb,
            dtype=dtype,
            scaling=scaling)
    if not decode:
        if not cv2.haveImageReader(source):
            raise unreadable(
                source, 'not a format OpenCV decodes (e.g. .png, .jpg, '
                '.tif, .bmp) nor a .npy array')
        return None
    with open(source, 'rb') as f:
        img = decode_image(f.read(), name)
    return ImageWindows(
        lambda ys, xs: img[ys, xs],
        img.shape,
        name,
        lazy=False,
        dtype=img.dtype,
        scaling=scaling)
