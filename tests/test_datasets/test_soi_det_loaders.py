"""The three SOI-Det datasets read the generated mini set through the real
pipelines."""
import filecmp
import json
import os.path as osp
import xml.etree.ElementTree as ET

import numpy as np
import pytest
from mmdet.structures.bbox import HorizontalBoxes
from mmrotate.registry import DATASETS
from mmrotate.structures.bbox import RotatedBoxes

from sm3det.datasets.preparation import generate_soi_det_mini
from repository import REPO_ROOT
from soi_det_mini_helpers import NUM_TEST, NUM_TRAIN


def build_part(config, split, index, **overrides):
    loader = (
        config.train_dataloader if split == 'train' else config.val_dataloader)
    return DATASETS.build(dict(loader.dataset.datasets[index], **overrides))


def test_generator_is_deterministic_for_a_seed(tmp_path):
    for name, seed in (('a', 3), ('b', 3), ('c', 4)):
        generate_soi_det_mini(
            str(tmp_path / name),
            num_train=2,
            num_test=1,
            size=128,
            seed=seed,
            parts=('dota', 'dronevehicle'))
    same = filecmp.cmpfiles(
        tmp_path / 'a/dota/train/annfiles',
        tmp_path / 'b/dota/train/annfiles', ['P0000.txt', 'P0001.txt'],
        shallow=False)[0]
    assert same == ['P0000.txt', 'P0001.txt']
    assert filecmp.cmp(
        tmp_path / 'a/dronevehicle/train/images/00000.jpg',
        tmp_path / 'b/dronevehicle/train/images/00000.jpg',
        shallow=False)
    assert not filecmp.cmp(
        tmp_path / 'a/dota/train/annfiles/P0000.txt',
        tmp_path / 'c/dota/train/annfiles/P0000.txt',
        shallow=False)


def test_sar_part_reads_coco_json(mini_root, mini_config):
    dataset = build_part(mini_config, 'test', 0)
    coco = json.load(open(osp.join(mini_root, 'sar/Annotations/test.json')))
    assert len(dataset) == NUM_TEST
    assert dataset.metainfo['classes'] == ('ship', 'aircraft', 'car', 'tank',
                                           'bridge', 'harbor')
    info = dataset.get_data_info(0)
    anns = [a for a in coco['annotations'] if a['image_id'] == info['img_id']]
    assert len(info['instances']) == len(anns) > 0
    x, y, w, h = anns[0]['bbox']
    assert info['instances'][0]['bbox'] == [x, y, x + w, y + h]
    assert info['instances'][0]['bbox_label'] == anns[0][
        'category_id']  # mini ids are indices
    assert info['dataset_name'] == 'sar' and (info['width'],
                                              info['height']) == (256, 256)

    item = dataset[0]
    sample = item['data_samples']
    assert sample.metainfo['dataset_name'] == 'sar'
    assert item['inputs'].shape[0] == 3  # one-channel SAR read as 3 channels
    assert isinstance(sample.gt_instances.bboxes, HorizontalBoxes)
    assert len(sample.gt_instances.bboxes) == len(anns)


def test_dota_part_reads_txt_with_header(mini_root, mini_config):
    dataset = build_part(mini_config, 'test', 1)
    assert len(
        dataset) == NUM_TEST and dataset.metainfo['dataset_name'] == 'dota'
    info = dataset.get_data_info(0)
    lines = open(
        osp.join(mini_root, 'dota/val/annfiles',
                 f'{info["img_id"]}.txt')).read().split('\n')
    objects = [line.split() for line in lines if line and ':' not in line]
    assert len(info['instances']) == len(objects) > 0
    assert info['instances'][0]['bbox'] == [float(v) for v in objects[0][:8]]
    assert dataset.metainfo['classes'][info['instances'][0]
                                       ['bbox_label']] == objects[0][8]

    sample = dataset[0]['data_samples']
    assert sample.metainfo['dataset_name'] == 'dota'
    boxes = sample.gt_instances.bboxes
    assert isinstance(boxes, RotatedBoxes) and len(boxes) == len(objects)
    assert (boxes.tensor[:, 4].abs() <= np.pi / 2 + 1e-4).all()  # le90 angles


def test_dronevehicle_part_reads_xml_and_maps_spellings(
        mini_root, mini_config):
    dataset = build_part(mini_config, 'test', 2)
    assert len(dataset) == NUM_TEST
    labels, names = [], []
    for i in range(len(dataset)):
        info = dataset.get_data_info(i)
        assert (info['width'], info['height']) == (320, 256)
        labels += [inst['bbox_label'] for inst in info['instances']]
        root = ET.parse(
            osp.join(mini_root, 'dronevehicle/test/labels',
                     f'{info["img_id"]}.xml'))
        names += [o.findtext('name') for o in root.iter('object')]
    assert len(labels) == len(names)
    assert sum(
        n == 'feright car'
        for n in names) == labels.count(4) > 0  # the real set's spelling
    sample = dataset[0]['data_samples']
    assert sample.metainfo['dataset_name'] == 'dronevehicle'
    assert isinstance(sample.gt_instances.bboxes, RotatedBoxes)


@pytest.mark.parametrize('index, name, box_type',
                         [(0, 'sar', HorizontalBoxes),
                          (1, 'dota', RotatedBoxes),
                          (2, 'dronevehicle', RotatedBoxes)])
def test_training_pipelines_keep_tag_and_box_type(mini_config, index, name,
                                                  box_type):
    dataset = build_part(mini_config, 'train', index)
    assert len(dataset) == NUM_TRAIN
    for i in range(3):
        item = dataset[i]
        sample = item['data_samples']
        assert sample.metainfo['dataset_name'] == name
        assert isinstance(sample.gt_instances.bboxes, box_type)
        assert max(item['inputs'].shape[1:]) == 256
        if name == 'sar':  # square mini images, resized keeping the ratio
            assert tuple(item['inputs'].shape[1:]) == (256, 256)


@pytest.mark.parametrize(
    'config_name, part, dataset_type',
    [('sardet', 'sar', 'SARDetDataset'), ('dota', 'dota', 'SOIDOTADataset'),
     ('dronevehicle', 'dronevehicle', 'DroneVehicleDataset')])
def test_single_part_configs_select_their_part(config_name, part,
                                               dataset_type):
    from mmengine.config import Config
    cfg = Config.fromfile(
        osp.join(REPO_ROOT, f'configs/_base_/datasets/{config_name}.py'))
    assert cfg.train_dataloader.dataset.type == dataset_type
    assert cfg.train_dataloader.sampler.type == 'InfiniteSampler'
    assert cfg.val_dataloader.dataset.type == dataset_type
    assert cfg.val_dataloader.dataset.test_mode
    assert list(cfg.val_evaluator.tasks) == [part]
