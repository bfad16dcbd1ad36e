"""LoadSensorImage / LoadImageOrSkip on real files written here: 16-bit and
float images are scaled as configured (never cut to near-black), 8-bit
images load bit-for-bit as mmcv's LoadImageFromFile loads them, and every
unreadable file is named (an error in testing, a logged skip in training).
"""
import json

import numpy as np
import pytest
from mmcv.transforms import LoadImageFromFile
from mmengine.config import Config
from mmengine.logging import MMLogger
from mmrotate.registry import DATASETS, TRANSFORMS

from sm3det.datasets import LoadImageOrSkip
from sm3det.datasets.annotation_checks import image_size_problem
from sm3det.imagery import UnscaledImageError
from repository import REPO_ROOT
from sensor_images import (AMPLITUDE_MAX, amplitude, write_image,
                           write_truncated_jpeg)


def load(path, scaling=None, loader='LoadSensorImage'):
    transform = TRANSFORMS.build(dict(type=loader, scaling=scaling))
    return transform(dict(img_path=str(path)))


def sar_scaling():
    """The scaling of the SAR pipelines of the SOI-Det configs."""
    cfg = Config.fromfile(f'{REPO_ROOT}/configs/_base_/datasets/soi_det.py')
    train, test = (cfg.sar_train_pipeline[0], cfg.sar_test_pipeline[0])
    assert train.scaling == test.scaling
    return train.scaling


@pytest.mark.parametrize('dtype', ['uint16', 'int16', 'float32', 'float64'])
@pytest.mark.parametrize('channels', [1, 3])
def test_deep_images_are_stretched_not_cut(tmp_path, dtype, channels):
    amp = amplitude()
    stored = amp.astype(dtype)
    if channels == 3:
        stored = np.stack([stored, stored * 0.5, stored * 0.25], axis=2)
    path = write_image(tmp_path / f'amplitude_{dtype}.tif', stored)
    img = load(path, sar_scaling())['img']
    assert img.dtype == np.uint8 and img.shape == (120, 160, 3)
    if channels == 1:
        assert (img == img[..., :1]).all()  # one channel repeated
    # 8-bit SAR is mid-grey clutter with bright targets, not black
    assert 60 < img[..., 0].mean() < 160 and img.max() == 255
    if dtype == 'uint16' and channels == 1:
        # OpenCV's colour reading divides by 256: mean 0.5, max 4
        cut = LoadImageFromFile()(dict(img_path=path))['img']
        assert cut.mean() < 1 and cut.max() == AMPLITUDE_MAX // 256


@pytest.mark.parametrize('dtype', ['uint16', 'int16', 'float32', 'float64'])
@pytest.mark.parametrize('channels', [1, 3])
def test_datasets_read_the_size_of_deep_images(tmp_path, dtype, channels):
    """The datasets' header check must not drop what the loader reads
    (PIL opens no float64 or 3-channel float TIFF)."""
    stored = amplitude().astype(dtype)
    if channels == 3:
        stored = np.stack([stored] * 3, axis=2)
    path = write_image(tmp_path / f'amplitude_{dtype}.tif', stored)
    assert image_size_problem(path) == ((160, 120), None)
    text = tmp_path / 'not_an_image.tif'
    text.write_text('no image')
    size, reason = image_size_problem(str(text))
    assert size is None and reason.startswith('unreadable image')


def test_scaling_maps_the_configured_range(tmp_path):
    ramp = np.arange(101, dtype=np.uint16).reshape(1, 101)
    path = write_image(tmp_path / 'ramp.tif', ramp)
    img = load(path, dict(type='percentile', low=0, high=100))['img'][0, :, 0]
    assert img[0] == 0 and img[100] == 255 and img[50] == 128
    # dB of amplitude: 10 * log10(10 ** 2) = 20 dB, the middle of 0..40 dB
    amp = np.array([[0.0, 1.0, 10.0, 100.0, 1e4, np.nan]], np.float32)
    path = write_image(tmp_path / 'amp.tif', amp)
    img = load(path, dict(type='db', low=0, high=40))['img'][0, :, 0]
    assert img.tolist() == [0, 0, 128, 255, 255, 0]
    path = write_image(tmp_path / 'power.tif', amp)
    img = load(path, dict(type='db', low=0, high=40, power=True))['img']
    assert img[0, :, 0].tolist() == [0, 0, 64, 128, 255, 0]


@pytest.mark.parametrize('name, channels', [('a.jpg', 3), ('grey.jpg', 1),
                                            ('a.png', 3), ('grey.png', 1),
                                            ('rgba.png', 4), ('a.tif', 3),
                                            ('grey.tif', 1), ('a.bmp', 3)])
def test_8_bit_images_load_as_before(tmp_path, name, channels):
    rng = np.random.default_rng(1)
    img = rng.integers(0, 256, (48, 64, channels), dtype=np.uint8)
    path = write_image(tmp_path / name, img)
    before = LoadImageFromFile(color_type='color')(dict(img_path=path))
    for loader in ('LoadSensorImage', 'LoadImageOrSkip'):
        after = load(path, sar_scaling(), loader)
        assert after['img'].dtype == np.uint8
        np.testing.assert_array_equal(after['img'], before['img'])
        assert after['img_shape'] == after['ori_shape'] == (48, 64)


def test_deep_image_without_scaling_stops_naming_file_dtype_option(tmp_path):
    path = write_image(tmp_path / 'scene.tif', amplitude().astype(np.uint16))
    for loader in ('LoadSensorImage', 'LoadImageOrSkip'):
        with pytest.raises(
                UnscaledImageError,
                match=r'image .*scene\.tif is uint16, not 8-bit, and the '
                'loader has no scaling: set its scaling option'):
            load(path, None, loader)
    with pytest.raises(ValueError, match='scaling type must be one of'):
        load(path, dict(type='linear'))
    with pytest.raises(ValueError, match='db scaling needs low < high'):
        load(path, dict(type='db'))
    with pytest.raises(ValueError, match=r"has no option \['hi'\]"):
        load(path, dict(type='percentile', hi=99))


def broken_files(tmp_path):
    """{file: the reason the error gives} for three unreadable images."""
    (tmp_path / 'text.png').write_text('not an image')
    (tmp_path / 'empty.jpg').write_bytes(b'')
    return {
        write_truncated_jpeg(tmp_path / 'cut.jpg'): 'truncated JPEG',
        str(tmp_path / 'text.png'): 'not an image OpenCV decodes',
        str(tmp_path / 'empty.jpg'): r'empty file \(0 bytes\)',
    }


def test_unreadable_images_are_named(tmp_path):
    for path, reason in broken_files(tmp_path).items():
        with pytest.raises(
                ValueError, match=f'cannot read image {path}: {reason}'):
            load(path)


def test_unreadable_images_are_skipped_and_logged_in_training(tmp_path):
    log_file = tmp_path / 'train.log'
    MMLogger.get_instance('test_sensor_skip', log_file=str(log_file))
    skipped_before = LoadImageOrSkip.num_skipped
    files = broken_files(tmp_path)
    for path in files:
        assert load(path, loader='LoadImageOrSkip') is None
    assert LoadImageOrSkip.num_skipped == skipped_before + len(files)
    log = log_file.read_text()
    for path in files:
        assert f'skipped unreadable image {path} (ValueError: cannot ' \
            f'read image {path}: ' in log


def test_truncated_jpeg_in_a_sar_training_set_is_replaced(tmp_path):
    """The SOI-Det config's SAR training dataset (its real pipeline) draws
    another image for one that was cut after the set was loaded."""
    (tmp_path / 'images').mkdir()
    images = []
    for i, name in enumerate(['good.jpg', 'cut.jpg']):
        write_image(tmp_path / 'images' / name,
                    (amplitude() / 5).astype(np.uint8))
        images.append(dict(id=i, file_name=name, width=160, height=120))
    coco = dict(
        images=images,
        categories=[dict(id=0, name='ship')],
        annotations=[
            dict(id=i, image_id=i, category_id=0, bbox=[10, 10, 20, 20])
            for i in range(2)
        ])
    (tmp_path / 'train.json').write_text(json.dumps(coco))
    cfg = Config.fromfile(f'{REPO_ROOT}/configs/_base_/datasets/soi_det.py')
    dataset = DATASETS.build(
        dict(
            cfg.sar_train,
            data_root=str(tmp_path) + '/',
            ann_file='train.json',
            data_prefix=dict(img_path='images/')))
    assert len(dataset) == 2
    write_truncated_jpeg(tmp_path / 'images' / 'cut.jpg')
    index = [dataset.get_data_info(i)['img_id'] for i in range(2)].index(1)
    for _ in range(3):
        sample = dataset[index]['data_samples']
        assert sample.img_path.endswith('good.jpg')
