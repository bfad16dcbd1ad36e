"""SM3DetInferencer on real sensor files written here: a 16-bit SAR TIFF is
stretched by the SAR task's scaling (whole, in windows and when drawn) and
not cut to near-black, a 16-bit image for a task without scaling stops with
its file, dtype and the option named, and unreadable files (truncated JPEG,
empty file) get one clear error naming them.

The model has random weights (no checkpoint): only the image path from file
to model input is tested.
"""
import os.path as osp

import cv2
import numpy as np
import pytest
from mmengine.config import Config

from sm3det.apis import SM3DetInferencer
from sm3det.datasets import LoadSensorImage
from sm3det.imagery import SensorScaling, UnscaledImageError, open_image
from repository import REPO_ROOT
from sensor_images import amplitude, write_image, write_truncated_jpeg

SM3DET = 'configs/sm3det/sm3det_convnext-mini_fpn_600it_soi-det-mini.py'


@pytest.fixture(scope='module')
def cfg():
    return Config.fromfile(osp.join(REPO_ROOT, SM3DET))


@pytest.fixture(scope='module')
def inferencer(cfg):
    return SM3DetInferencer(cfg, device='cpu')


@pytest.fixture
def sar_tiff(tmp_path):
    """The issue's product: one-channel 16-bit amplitude, mean 122, max
    1046 (uncompressed, so the sliding window memory-maps it)."""
    return write_image(tmp_path / 'scene.tif',
                       amplitude().astype(np.uint16),
                       [cv2.IMWRITE_TIFF_COMPRESSION, 1])


def model_input(inferencer, source):
    """The (3, H, W) uint8 tensor the whole-image pipeline gives."""
    items = inferencer._inputs_to_list(source)
    batch = next(iter(inferencer.preprocess(items)))[1]
    return batch['inputs'][0]


def test_16_bit_sar_image_is_stretched(cfg, inferencer, sar_tiff):
    inferencer.task = 'sar'
    scaling = inferencer.scaling  # the SAR test pipeline's
    assert repr(scaling) == repr(SensorScaling(cfg.sar_scaling))
    loader = LoadSensorImage(scaling=cfg.sar_scaling)
    expected = loader(dict(img_path=sar_tiff))['img']
    assert 60 < expected.mean() < 160  # not the near-black cut (mean 0.5)

    resized = model_input(inferencer, sar_tiff)
    assert 60 < resized.float().mean() < 160
    # an array of the same values gives the same model input
    assert (model_input(inferencer,
                        amplitude().astype(np.uint16)) == resized).all()

    out = inferencer(
        sar_tiff,
        task='sar',
        return_vis=True,
        pred_score_thr=1.01,  # nothing drawn: the image itself
        return_datasample=True)
    assert out['predictions'][0].ori_shape == (120, 160)
    np.testing.assert_array_equal(out['visualization'][0], expected[..., ::-1])

    windows = open_image(sar_tiff, scaling=scaling)
    assert windows.lazy  # memory-mapped, scaled per window alike
    np.testing.assert_array_equal(windows[40:104, 96:160], expected[40:104,
                                                                    96:160])
    pred = inferencer(
        sar_tiff,
        task='sar',
        sliding_window=True,
        patch_size=64,
        return_datasample=True)['predictions'][0]
    assert pred.num_patches == 9 and pred.ori_shape == (120, 160)


def test_16_bit_image_without_scaling_is_an_error(inferencer, sar_tiff):
    for source, name in ((sar_tiff, r'.*scene\.tif'),
                         (amplitude().astype(np.uint16),
                          r'input 0 \(array\)')):
        for sliding_window in (False, True):
            with pytest.raises(
                    UnscaledImageError,
                    match=f'image {name} is uint16, not 8-bit, and the '
                    'loader has no scaling: set its scaling option'):
                inferencer(source, task='dota', sliding_window=sliding_window)


def test_unreadable_files_name_the_file(inferencer, tmp_path):
    cut = write_truncated_jpeg(tmp_path / 'cut.jpg')
    empty = tmp_path / 'empty.jpg'
    empty.write_bytes(b'')
    for path, reason in ((cut, 'truncated JPEG'), (str(empty),
                                                   r'empty file \(0 bytes\)')):
        for sliding_window in (False, True):
            with pytest.raises(
                    ValueError, match=f'cannot read image {path}: {reason}'):
                inferencer(path, task='sar', sliding_window=sliding_window)
