"""The ONNX runtime on a tiny exported detector (``BrightCells``,
tests/test_deploy/conftest.py: every 16 px cell of the resized input is a
box, scored by its red or blue): detections come back in original-image
pixels after the score threshold and class-wise NMS, the sliding-window
mode finds the same objects with mmrotate's windows and patches, and bad
metadata, graphs and images are refused with the problem named."""
import json
import os.path as osp

import cv2
import numpy as np
import pytest
from mmrotate.datasets.transforms import LoadPatchFromNDArray
from mmrotate.utils import slide_window

from sm3det.deploy import DeployMeta, OnnxDetector, read_meta, write_meta
from sm3det.deploy.preprocess import cut_patch, sliding_windows
from sm3det.imagery import open_image

RED, BLUE, DIM_RED = (0, 0, 255), (255, 0, 0), (0, 0, 100)


def scene(height, width, objects) -> np.ndarray:
    """A black BGR image with ``objects``: (colour, (x1, y1, x2, y2))."""
    img = np.zeros((height, width, 3), np.uint8)
    for colour, (x1, y1, x2, y2) in objects:
        img[y1:y2, x1:x2] = colour
    return img


#: 512 x 384 resized by 0.5 to 256 x 192: each object covers whole 16 px
#: cells of the input, 32 px cells of the image; the dim one scores 0.39.
SMALL = scene(384, 512, [(RED, (64, 96, 128, 160)),
                         (BLUE, (256, 192, 320, 224)),
                         (DIM_RED, (384, 256, 448, 320))])


def cells(x1, y1, x2, y2, side):
    """(x1, y1, x2, y2) of the ``side`` px cells tiling a box, row-major."""
    return [(x, y, x + side, y + side) for y in range(y1, y2, side)
            for x in range(x1, x2, side)]


def as_rbox(box):
    x1, y1, x2, y2 = box
    return ((x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1, 0.0)


def rows(found) -> list:
    """Detections as sorted (label, score, *box) rows."""
    return sorted((int(label), float(score), *map(float, box))
                  for box, score, label in zip(*found))


def expected_rows(box_type, objects):
    """Rows of score-1 detections: (label, boxes) per object."""
    return sorted((label, 1.0, *(as_rbox(box) if box_type == 'rbox' else box))
                  for label, boxes in objects for box in boxes)


@pytest.mark.parametrize('box_type', ['hbox', 'rbox'])
def test_detections_are_in_image_pixels_after_threshold_and_nms(
        tiny_detector, box_type):
    detector = OnnxDetector(tiny_detector(box_type), num_threads=1)
    found = detector(SMALL)
    # the half-score copies are gone (NMS), the dim square too (threshold)
    assert rows(found) == expected_rows(box_type,
                                        [(0, cells(64, 96, 128, 160, 32)),
                                         (1, cells(256, 192, 320, 224, 32))])
    assert found.boxes.dtype == np.float32
    assert found.scores.dtype == np.float32
    assert found.labels.dtype == np.int64
    assert detector.classes == ('red', 'blue')


def test_images_from_files_and_deep_images(tiny_detector, tmp_path):
    detector = OnnxDetector(tiny_detector())
    expected = rows(detector(SMALL))
    png = str(tmp_path / 'small.png')
    cv2.imwrite(png, SMALL)
    np.save(tmp_path / 'small.npy', SMALL)
    assert rows(detector(png)) == expected
    assert rows(detector(tmp_path / 'small.npy')) == expected

    # 16-bit amplitude: 1000 is 60 dB, mapped to 255 by the meta's scaling;
    # the dim square's 10 (20 dB) stays dim
    deep = np.select([SMALL == 255, SMALL == 100], [1000, 10]).astype('u2')
    scaled = OnnxDetector(
        tiny_detector(edit=lambda meta: meta['preprocess'].update(
            scaling=dict(type='db', low=0.0, high=60.0))))
    assert rows(scaled(deep)) == expected
    with pytest.raises(
            ValueError,
            match='uint16, not 8-bit.*preprocess'
            r'\.scaling in .*tiny\.json'):
        detector(deep)


@pytest.mark.parametrize(
    'image, message',
    [(np.zeros((64, 64, 4), np.uint8), 'has 4 channels.*3-channel BGR'),
     (np.zeros((64, 64, 2), np.uint8), 'has 2 channels.*3-channel BGR'),
     (np.zeros((1, 64, 64, 3), np.uint8), r'expected \(H, W\) or \(H, W, C'),
     (np.zeros((64, 64, 3), np.float32), 'float32, not 8-bit.*scaling')])
def test_bad_images_are_refused(tiny_detector, image, message):
    detector = OnnxDetector(tiny_detector())
    with pytest.raises(ValueError, match=message):
        detector(image)
    with pytest.raises(ValueError, match=message):
        detector.predict_by_patches(image)


def test_post_processing_settings(tiny_detector):

    def detect(**post):
        path = tiny_detector(
            edit=lambda meta: meta['postprocess'].update(post))
        return OnnxDetector(path)(SMALL)

    # scores must be above score_thr: 0.3 keeps the dim square (0.39)
    assert len(detect(score_thr=0.3).scores) == 10
    assert len(detect(score_thr=1.0).scores) == 0
    assert len(detect(max_per_img=3).scores) == 3
    # boxes are 32 px: they need a width and height above min_bbox_size
    assert len(detect(min_bbox_size=31.5).scores) == 6
    assert len(detect(min_bbox_size=32).scores) == 0
    # with an IoU threshold of 1 the half-score copies stay
    found = detect(score_thr=0.45, iou_threshold=1.0)
    assert sorted(found.scores.tolist()) == [0.5] * 6 + [1.0] * 6


#: 640 x 512, resized by 0.4 whole; objects on 80 px, i.e. both on the
#: whole image's 40 px cells and on the 16 px cells of its 256 px patches.
LARGE_OBJECTS = [(0, RED, (160, 80, 240, 160)),
                 (1, BLUE, (400, 320, 480, 400))]
LARGE = scene(512, 640, [(colour, box) for _, colour, box in LARGE_OBJECTS])


@pytest.mark.parametrize('box_type', ['hbox', 'rbox'])
def test_patches_find_what_the_whole_image_call_finds(tiny_detector, tmp_path,
                                                      box_type):
    detector = OnnxDetector(tiny_detector(box_type))
    whole = detector(LARGE)
    for label, _, box in LARGE_OBJECTS:
        boxes = whole.boxes[whole.labels == label]
        if box_type == 'rbox':
            centres, half = boxes[:, :2], boxes[:, 2:4] / 2
            boxes = np.concatenate([centres - half, centres + half], 1)
        extent = [*boxes[:, :2].min(0), *boxes[:, 2:].max(0)]
        np.testing.assert_allclose(extent, box, atol=0.5)

    # patches of 256 px (the test scale) overlapping by 64 px: unresized,
    # so their cells are 16 px; objects seen by two patches appear once
    patches = detector.predict_by_patches(LARGE)
    assert rows(patches) == expected_rows(box_type,
                                          [(label, cells(*box, 16))
                                           for label, _, box in LARGE_OBJECTS])
    np.save(tmp_path / 'large.npy', LARGE)
    assert open_image(str(tmp_path / 'large.npy')).lazy
    assert rows(detector.predict_by_patches(tmp_path /
                                            'large.npy')) == rows(patches)
    # merged at IoU 1, the copies seen by 2 or 4 patches stay (hbox: IoU
    # > 1 suppresses; rbox: IoU >= 1, as mmcv's kernels)
    copies = detector.predict_by_patches(LARGE, merge_iou_thr=1.0)
    assert len(copies.scores) == (120 if box_type == 'hbox' else 50)
    assert sorted(set(rows(copies))) == rows(patches)
    with pytest.raises(ValueError, match=r'patch_overlap must be in \[0, '):
        detector.predict_by_patches(LARGE, 256, 256)


@pytest.mark.parametrize('width, height', [(640, 512), (600, 1000), (100, 200),
                                           (256, 256), (257, 1300), (50, 40),
                                           (1000, 180)])
@pytest.mark.parametrize('size, overlap', [(256, 64), (128, 1), (800, 200)])
def test_windows_are_mmrotates(width, height, size, overlap):
    windows = sliding_windows(width, height, size, overlap)
    expected = slide_window(width, height, [size], [size - overlap])
    assert windows.dtype == expected.dtype
    np.testing.assert_array_equal(windows, expected)


def test_patches_are_mmrotates_padded_at_the_border():
    image = np.random.default_rng(0).integers(0, 256, (100, 200, 3), np.uint8)
    load_patch = LoadPatchFromNDArray()
    windows = np.concatenate(
        [slide_window(200, 100, [128], [96]), [[150, 60, 278, 188]]])
    for window in windows:
        expected = load_patch(dict(img=image, patch=window.tolist()))['img']
        assert expected.shape == (128, 128, 3)
        np.testing.assert_array_equal(cut_patch(image, window), expected)
        np.testing.assert_array_equal(
            cut_patch(open_image(image), window), expected)


def test_metadata_round_trip(tiny_detector, tmp_path):
    meta = read_meta(tiny_detector('rbox'))
    written = write_meta(tmp_path / 'model.onnx', meta)
    assert written == str(tmp_path / 'model.json')
    assert read_meta(tmp_path / 'model.onnx') == meta
    assert meta.to_dict()['classes'] == ['red', 'blue']
    with pytest.raises(AttributeError):
        meta.task = 'other'
    with pytest.raises(ValueError, match="box_type is 'obb'"):
        DeployMeta.from_dict(dict(meta.to_dict(), box_type='obb'))


def _drop(key):
    return lambda meta: meta.pop(key)


@pytest.mark.parametrize('edit, message', [
    (_drop('classes'), r"missing \['classes'\]"),
    (lambda m: m.update(box_type='obb'),
     r"box_type is 'obb'; allowed: one of \['hbox', 'rbox'\]"),
    (lambda m: m.update(format_version=2), 'format_version is 2; allowed'),
    (lambda m: m.update(colour='red'), r"unknown \['colour'\]"),
    (lambda m: m['preprocess'].pop('mean'), r"missing \['preprocess.mean'\]"),
    (lambda m: m['preprocess'].update(std=[1, 0, 1]),
     'preprocess.std is .*3 positive numbers'),
    (lambda m: m['preprocess'].update(scale=800),
     r'preprocess.scale is 800; allowed: \[width, height\]'),
    (lambda m: m['preprocess'].update(scaling=dict(type='minmax')),
     'preprocess.scaling: scaling type must be one of'),
    (lambda m: m['postprocess'].update(nms_type='nms_rotated'),
     "nms_type is 'nms_rotated' but box_type is 'hbox'"),
    (lambda m: m['postprocess'].update(iou_threshold=1.5),
     r'iou_threshold is 1.5; allowed: a number in \[0, 1\]'),
])
def test_bad_metadata_is_refused(tiny_detector, edit, message):
    path = tiny_detector(edit=edit)
    with pytest.raises(ValueError, match=message) as error:
        OnnxDetector(path)
    assert osp.splitext(path)[0] + '.json' in str(error.value)


def test_missing_or_broken_metadata_file(tiny_detector):
    path = tiny_detector(meta=False)
    json_path = osp.splitext(path)[0] + '.json'
    with pytest.raises(ValueError, match=f'{json_path} .* does not exist'):
        OnnxDetector(path)
    with open(json_path, 'w') as f:
        f.write('{"task": ')
    with pytest.raises(ValueError, match=f'{json_path} is not JSON'):
        OnnxDetector(path)
    with open(json_path, 'w') as f:
        json.dump(['task'], f)
    with pytest.raises(ValueError, match=f'{json_path} holds a JSON list'):
        OnnxDetector(path)
    with pytest.raises(FileNotFoundError, match='missing.onnx'):
        OnnxDetector(osp.join(osp.dirname(path), 'missing.onnx'))


def test_graphs_without_the_interface_are_refused(tiny_detector):
    path = tiny_detector(input_names=('img', 'size'))
    with pytest.raises(
            ValueError,
            match=f"{path} takes inputs .*'img'.*an "
            r"SM3Det graph takes \['image', 'image_size'\]"):
        OnnxDetector(path)
    # a horizontal-box graph described as rotated
    path = tiny_detector(edit=lambda meta: meta.update(
        box_type='rbox',
        postprocess=dict(meta['postprocess'], nms_type='nms_rotated')))
    with pytest.raises(
            ValueError,
            match='boxes of 4 columns, but its '
            r'metadata says rbox \(5 columns\)'):
        OnnxDetector(path)
