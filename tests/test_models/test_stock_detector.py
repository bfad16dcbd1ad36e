"""Heads written as a stock mmdet / mmrotate config plus SM3Det's changes:
the resolved config is the stock's ``model`` without its trunk, with the
changes merged, and it is what SM3Det and the single-dataset models build."""
import copy
import os.path as osp
import re

import pytest
import torch
from mmdet.models.detectors import GFL, CascadeRCNN
from mmengine.config import Config
from mmrotate.registry import MODELS

from sm3det.models.detectors import resolve_stock_detectors, stock_detector_cfg
from repository import REPO_ROOT, run_script

ROI_TRANS = 'mmrotate::roi_trans/roi-trans-le90_r50_fpn_1x_dota.py'
MAIN = 'configs/sm3det/sm3det_convnext-t_fpn_33k_soi-det.py'
HEAD_PAIR_MINI = ('configs/head_pairs/sm3det-cascade-roitrans_convnext-'
                  'mini_fpn_600it_soi-det-mini.py')


def stock_model(path: str) -> dict:
    """The stock config's ``model`` as a config inheriting it sees it."""
    return Config.fromstring(f'_base_ = {path!r}', '.py').model.to_dict()


def test_resolved_head_is_the_stock_with_the_changes():
    resolved = stock_detector_cfg(
        ROI_TRANS,
        roi_head=dict(bbox_head={
            '0': dict(num_classes=5),
            '1': dict(num_classes=5)
        }),
        test_cfg=dict(rcnn=dict(_delete_=True, max_per_img=10)))
    expected = stock_model(ROI_TRANS)
    for key in ('backbone', 'neck', 'data_preprocessor'):
        del expected[key]
    for stage in expected['roi_head']['bbox_head']:
        stage['num_classes'] = 5
    expected['test_cfg']['rcnn'] = dict(max_per_img=10)
    assert resolved.to_dict() == expected
    assert resolved._scope_ == 'mmrotate'  # as `_base_` inheritance sets it


def test_a_head_can_start_from_another():
    """A smaller head: another StockDetector config with more changes."""
    dota = dict(type='StockDetector', config=ROI_TRANS)
    narrow = stock_detector_cfg(dota, rpn_head=dict(feat_channels=64))
    assert narrow.rpn_head.feat_channels == 64
    narrow.rpn_head.feat_channels = 256
    assert narrow == stock_detector_cfg(ROI_TRANS)
    with pytest.raises(ValueError, match='StockDetector config'):
        stock_detector_cfg(dict(type='mmdet.GFL'))


@pytest.mark.parametrize('config,message', [
    ('mmrotate::roi_trans/no-such-config.py',
     r"cannot load the stock config 'mmrotate::roi_trans/no-such-config"),
    ('nopackage::gfl/gfl_r50_fpn_1x_coco.py',
     r"cannot load the stock config 'nopackage::gfl/"),
    ('configs/gfl/gfl_r50_fpn_1x_coco.py',
     r"config 'configs/gfl/gfl_r50_fpn_1x_coco.py' is no installed config"),
])
def test_a_bad_stock_config_is_named(config, message):
    with pytest.raises(ValueError, match=message):
        stock_detector_cfg(config)
    with pytest.raises(ValueError, match=message):
        MODELS.build(dict(type='StockDetector', config=config))


def test_configs_build_the_resolved_detectors():
    """SM3Det's heads and a single-dataset model are the stock detectors;
    the resolution leaves the config it is given unchanged."""
    cfg = Config.fromfile(osp.join(REPO_ROOT, MAIN))
    before = copy.deepcopy(cfg.model)
    resolved = resolve_stock_detectors(cfg.model)
    assert cfg.model == before
    sar = resolved.tasks.sar.detector
    assert (sar.type, sar._scope_, sar.bbox_head.num_classes) == ('GFL',
                                                                  'mmdet', 6)
    # What tools that change test-time settings before building read.
    assert resolved.tasks.dota.detector.test_cfg.rpn.max_per_img == 2000
    with torch.device('meta'):
        model = MODELS.build(cfg.model)
    assert isinstance(model.heads.sar, GFL)
    assert model.heads.dronevehicle.roi_head.bbox_head.num_classes == 5

    single = Config.fromfile(
        osp.join(REPO_ROOT, 'configs/single/gfl_convnext-t_fpn_33k_sardet.py'))
    whole = resolve_stock_detectors(single.model)
    assert (whole.type, whole.backbone.type) == ('GFL', 'mmrotate.ConvNeXtMoE')
    with torch.device('meta'):
        assert isinstance(MODELS.build(single.model), GFL)


def test_mini_heads_are_the_heads_with_mini_changes():
    cfg = Config.fromfile(osp.join(REPO_ROOT, HEAD_PAIR_MINI))
    tasks = resolve_stock_detectors(cfg.model).tasks
    stages = tasks.dronevehicle.detector.roi_head.bbox_head
    assert [(s.num_classes, s.in_channels, s.fc_out_channels)
            for s in stages] == [(5, 64, 256)] * 2
    cascade = tasks.sar.detector
    assert [s.num_classes for s in cascade.roi_head.bbox_head] == [6] * 3
    assert [r.sampler.num for r in cascade.train_cfg.rcnn] == [256] * 3
    with torch.device('meta'):
        model = MODELS.build(cfg.model)
    assert isinstance(model.heads.sar, CascadeRCNN)


def test_print_config_shows_the_resolved_heads():
    text = run_script('tools/misc/print_config.py', MAIN).stdout
    model = re.search(r'\nmodel = dict\(.*?\n(?=\S)', text, re.S).group()
    assert "type='GFLHead'" in model and 'num_classes=6' in model
    assert 'StockDetector' not in model
