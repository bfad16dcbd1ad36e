"""SM3DetInferencer's errors name what is wrong and what is allowed; the
single-task configs and a one-task SM3Det need no task name.

The models have random weights (no checkpoint): only the plumbing is
tested here, on small drawn images.
"""
import os.path as osp

import cv2
import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmrotate.structures.bbox import RotatedBoxes

from sm3det.apis import SM3DetInferencer
from repository import REPO_ROOT

SM3DET = 'configs/sm3det/sm3det_convnext-mini_fpn_600it_soi-det-mini.py'
SINGLE = 'configs/single/oriented-rcnn_convnext-mini_fpn_600it_dota-mini.py'
TASKS = "['sar', 'dota', 'dronevehicle']"


def config(path):
    return Config.fromfile(osp.join(REPO_ROOT, path))


@pytest.fixture(scope='module')
def inferencer():
    return SM3DetInferencer(config(SM3DET), device='cpu')


@pytest.fixture
def image(tmp_path):
    path = str(tmp_path / 'scene.png')
    cv2.imwrite(
        path,
        np.random.default_rng(0).integers(
            0, 255, (96, 128, 3), dtype=np.uint8))
    return path


def test_task_errors(inferencer, image):
    with pytest.raises(
            ValueError,
            match=r"unknown task 'optical'; the "
            r'model has the tasks \[.dota., .dronevehicle., .sar.\]'):
        inferencer(image, task='optical')
    with pytest.raises(
            ValueError, match=r'the model has several tasks \[.dota.'):
        inferencer(image)


def test_image_errors(inferencer, tmp_path):
    missing = str(tmp_path / 'missing.png')
    with pytest.raises(FileNotFoundError, match=f'image {missing} does not'):
        inferencer(missing, task='sar')
    not_an_image = tmp_path / 'notes.png'
    not_an_image.write_text('not an image')
    with pytest.raises(
            ValueError,
            match='cannot read image .*notes.png: '
            'not a format OpenCV decodes'):
        inferencer(str(not_an_image), task='dota')
    rgba = np.zeros((64, 64, 4), np.uint8)
    with pytest.raises(
            ValueError,
            match='has 4 channels; .* take 3-channel '
            'BGR images, or 1-channel images'):
        inferencer(rgba, task='dota')
    npy = str(tmp_path / 'two_bands.npy')
    np.save(npy, np.zeros((300, 300, 2), np.uint8))
    with pytest.raises(ValueError, match='two_bands.npy has 2 channels'):
        inferencer(npy, task='dota', sliding_window=True)
    with pytest.raises(ValueError, match='patch_overlap must be in'):
        inferencer(
            np.zeros((64, 64, 3), np.uint8),
            task='dota',
            sliding_window=True,
            patch_size=64,
            patch_overlap=64)


def test_checkpoint_that_does_not_match(inferencer, tmp_path):
    state = inferencer.model.state_dict()
    removed = 'heads.sar.bbox_head.gfl_cls.weight'
    state.pop(removed)
    state['heads.optical.weight'] = torch.zeros(1)
    path = str(tmp_path / 'other.pth')
    torch.save(dict(state_dict=state), path)
    with pytest.raises(ValueError) as error:
        SM3DetInferencer(config(SM3DET), path, device='cpu')
    message = str(error.value)
    assert f'checkpoint {path} does not match the model' in message
    assert 'unexpected key in source state_dict: heads.optical.weight' \
        in message
    assert f'missing keys in source state_dict: {removed}' in message


def test_one_task_models_need_no_task(image):
    single = SM3DetInferencer(config(SINGLE), device='cpu')
    one_head = config(SM3DET)
    one_head.model.tasks = dict(dota=one_head.model.tasks.dota)
    exported = SM3DetInferencer(one_head, device='cpu')
    for inferencer in (single, exported):
        assert inferencer.tasks == ['dota']
        pred = inferencer(image, return_datasample=True)['predictions'][0]
        assert isinstance(pred.pred_instances.bboxes, RotatedBoxes)
        assert pred.ori_shape == (96, 128)
        assert pred.classes[0] == 'plane'
