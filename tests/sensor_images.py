"""Sensor images written by the tests: SAR-like amplitude at any dtype and
broken files."""
import cv2
import numpy as np

#: The issue's 16-bit amplitude product: mean about 122, maximum 1046.
AMPLITUDE_MEAN, AMPLITUDE_MAX = 122, 1046


def amplitude(height: int = 120, width: int = 160, seed: int = 0):
    """(H, W) float64 SAR-like amplitude: Rayleigh clutter of mean
    AMPLITUDE_MEAN and a few bright scatterers at AMPLITUDE_MAX."""
    rng = np.random.default_rng(seed)
    img = rng.rayleigh(AMPLITUDE_MEAN / np.sqrt(np.pi / 2), (height, width))
    img = np.minimum(img, AMPLITUDE_MAX - 1)
    img[height // 3:height // 3 + 3, width // 2:width // 2 + 6] = \
        AMPLITUDE_MAX
    return img


def write_image(path, img: np.ndarray, params=()) -> str:
    """Write ``img`` with OpenCV (TIFF keeps 16-bit and float dtypes);
    ``params`` as ``cv2.imwrite``'s."""
    assert cv2.imwrite(str(path), img, list(params)), path
    return str(path)


def write_truncated_jpeg(path) -> str:
    """A JPEG cut in the middle of its scan, as an interrupted copy
    leaves it."""
    ok, data = cv2.imencode('.jpg', (amplitude() / 5).astype(np.uint8))
    data = data.tobytes()
    with open(path, 'wb') as f:
        f.write(data[:len(data) * 2 // 3])
    return str(path)
