"""Images of any size, read one window at a time where the format allows.

The sliding-window mode must not hold a 20000 x 20000 scene (1.2 GB as
8-bit BGR) in memory, only a batch of patches. :func:`open_image` gives an
:class:`ImageWindows` whose ``image[y1:y2, x1:x2]`` reads just that window:

* numpy arrays (``np.memmap`` included) are sliced as they are;
* ``.npy`` files and uncompressed strip TIFFs (8-bit grey or RGB, as PIL
  and GDAL write them without compression) are memory-mapped per window,
  so a window costs its own bytes and the mapping is dropped afterwards;
* every other file (PNG, JPEG, compressed or tiled TIFF ...) is decoded
  whole by OpenCV, as the single-image pipeline does.

Windows are 3-channel BGR, the channel order ``LoadImageFromFile`` gives;
1-channel images are repeated to 3 channels, as ``color_type='color'``
reading does.
"""
import os.path as osp
from typing import Optional, Tuple, Union

import cv2
import numpy as np

#: Channel counts a window can be made of (1 is repeated to 3).
READABLE_CHANNELS = (1, 3)


class ImageWindows:
    """A (H, W, 3) BGR image whose windows are read on demand.

    Args:
        read: ``read(y_slice, x_slice) -> (h, w, C)`` array of the source.
        shape: (H, W, C) of the source; C in :data:`READABLE_CHANNELS`.
        name: where the image comes from, for messages and output names.
        lazy: whether windows are read without the whole image in memory.
        rgb: the source stores RGB (TIFF) instead of BGR (OpenCV, arrays).
    """

    def __init__(self,
                 read,
                 shape: Tuple[int, int, int],
                 name: str,
                 lazy: bool,
                 rgb: bool = False):
        self._read = read
        self.height, self.width, self.channels = shape
        self.name = name
        self.lazy = lazy
        self.rgb = rgb

    @property
    def shape(self) -> Tuple[int, int, int]:
        """(H, W, 3): the shape of what windows look like."""
        return self.height, self.width, 3

    def __getitem__(self, index) -> np.ndarray:
        """``image[y1:y2, x1:x2]``: that window as a (h, w, 3) BGR array."""
        if not (isinstance(index, tuple) and len(index) == 2
                and all(isinstance(i, slice) for i in index)):
            raise TypeError('ImageWindows reads 2-D windows, image[y1:y2, '
                            f'x1:x2]; got index {index!r}')
        window = np.asarray(self._read(*index))
        if window.ndim == 2:
            window = window[..., None]
        if window.shape[2] == 1:
            return np.repeat(window, 3, axis=2)
        return window[..., ::-1].copy() if self.rgb else window

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


def _tiff_source(path: str) -> Optional[Tuple[int, np.dtype, tuple]]:
    """(offset, dtype, shape) of an uncompressed, contiguous 8-bit strip
    TIFF; None for any other TIFF (it is then decoded whole)."""
    from PIL import Image
    try:
        with Image.open(path) as im:
            mode, (width, height), tiles = im.mode, im.size, im.tile
            frames = getattr(im, 'n_frames', 1)
    except Exception:  # noqa: BLE001 - not readable by PIL: decode whole
        return None
    channels = {'L': 1, 'RGB': 3}.get(mode)
    if channels is None or frames != 1 or not tiles:
        return None
    row_bytes = width * channels
    first_offset = tiles[0][2]
    for codec, box, offset, args in tiles:
        rawmode = args[0] if isinstance(args, tuple) else args
        x0, y0, x1, _ = box
        if (codec != 'raw' or rawmode != mode or (x0, x1) != (0, width)
                or offset != first_offset + y0 * row_bytes):
            return None
    return first_offset, np.dtype(np.uint8), (height, width, channels)


def _unreadable(path: str) -> str:
    return (f'cannot read image {path}: not a format OpenCV decodes (e.g. '
            '.png, .jpg, .tif, .bmp) nor a .npy array')


def open_image(source: Union[str, np.ndarray, ImageWindows],
               channels: int = 3,
               name: Optional[str] = None,
               decode: bool = True) -> Optional[ImageWindows]:
    """Open an image path or array for window reading.

    Args:
        source: a path (``.npy``, TIFF, or any format OpenCV reads) or a
            (H, W) / (H, W, C) array in BGR order.
        channels: channels the model takes (its data preprocessor's mean
            values); only 3 is supported.
        name: name used in messages (default: the path, or 'array').
        decode: False only checks a file that would be decoded whole
            (exists, has a known image header) and returns None.

    Raises:
        FileNotFoundError: the path does not exist.
        ValueError: the file is not a readable image, or has a channel
            count other than 1 or 3.
    """
    if isinstance(source, ImageWindows):
        return source
    if isinstance(source, np.ndarray):
        name = name or 'array'
        shape = check_image_shape(source.shape, name, channels)
        return ImageWindows(
            lambda ys, xs: source[ys, xs], shape, name, lazy=True)
    if not isinstance(source, str):
        raise TypeError('an image is a path or a numpy array, got '
                        f'{type(source).__name__}')
    name = name or source
    if not osp.isfile(source):
        raise FileNotFoundError(f'image {source} does not exist')
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
            rgb=rgb)
    if not decode:
        if not cv2.haveImageReader(source):
            raise ValueError(_unreadable(source))
        return None
    img = cv2.imread(source, cv2.IMREAD_COLOR)
    if img is None:
        raise ValueError(_unreadable(source))
    return ImageWindows(
        lambda ys, xs: img[ys, xs], img.shape, name, lazy=False)
