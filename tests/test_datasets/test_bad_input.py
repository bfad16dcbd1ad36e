"""Bad files get a clear message naming them, and are skipped (not lost
silently)."""
import json
import os.path as osp

import cv2
import numpy as np
import pytest
from mmengine.logging import MMLogger
from mmrotate.registry import DATASETS

from sm3det.datasets import LoadImageOrSkip

GOOD_POLYGON = '10 10 60 10 60 40 10 40'


def write_image(path, width=100, height=80):
    cv2.imwrite(str(path), np.full((height, width, 3), 128, np.uint8))


def dota_folder(tmp_path, annotations, images=None):
    """A DOTA-style folder: {stem: txt content}; images for every stem
    unless given."""
    (tmp_path / 'images').mkdir()
    (tmp_path / 'annfiles').mkdir()
    for stem, text in annotations.items():
        (tmp_path / 'annfiles' / f'{stem}.txt').write_text(text)
    for stem in (annotations if images is None else images):
        write_image(tmp_path / 'images' / f'{stem}.png')


def build(type_,
          root,
          test_mode=True,
          ann_file='annfiles/',
          pipeline=(),
          **kwargs):
    return DATASETS.build(
        dict(
            type=type_,
            data_root=str(root) + '/',
            ann_file=ann_file,
            data_prefix=dict(img_path='images/'),
            test_mode=test_mode,
            pipeline=list(pipeline),
            **kwargs))


def skipped(dataset):
    return {(osp.basename(path), what, reason.split(' (')[0])
            for path, what, reason in dataset.skip_log.entries}


def test_bad_objects_are_skipped_with_the_file_named(tmp_path):
    log_file = tmp_path / 'load.log'
    MMLogger.get_instance('test_bad_objects', log_file=str(log_file))
    dota_folder(
        tmp_path, {
            'good':
            f'imagesource:GoogleEarth\ngsd:0.5\n{GOOD_POLYGON} plane 0\n',
            'three_points':
            f'{GOOD_POLYGON} ship 0\n10 10 60 10 60 40 ship 0\n',
            'flat': '10 10 60 10 80 10 30 10 harbor 0\n',
            'outside': '200 200 260 200 260 240 200 240 plane 0\n',
        })
    dataset = build('SOIDOTADataset', tmp_path)
    assert len(dataset) == 4
    assert skipped(dataset) == {
        ('three_points.txt', 'object', 'polygon with 3 points'),
        ('flat.txt', 'object', 'polygon of zero area'),
        ('outside.txt', 'object', 'polygon entirely outside the 100x80 image')
    }
    objects = {
        dataset.get_data_info(i)['img_id']:
        len(dataset.get_data_info(i)['instances'])
        for i in range(4)
    }
    assert objects == dict(flat=0, good=1, outside=0, three_points=1)
    log = log_file.read_text()
    assert 'three_points.txt: skipped object: polygon with 3 points' in log
    assert 'skipped 0 images and 3 objects' in log


def test_missing_and_unreadable_images_are_skipped(tmp_path):
    dota_folder(
        tmp_path, {
            'good': f'{GOOD_POLYGON} plane 0\n',
            'missing': f'{GOOD_POLYGON} plane 0\n',
            'broken': f'{GOOD_POLYGON} plane 0\n'
        },
        images=['good'])
    (tmp_path / 'images' / 'broken.png').write_bytes(b'not a png at all')
    dataset = build('SOIDOTADataset', tmp_path)
    assert len(dataset) == 1 and dataset.get_data_info(0)['img_id'] == 'good'
    assert skipped(dataset) == {('missing.png', 'image',
                                 'image file not found'),
                                ('broken.png', 'image', 'unreadable image')}


def test_empty_annotation_files(tmp_path):
    dota_folder(tmp_path, {'good': f'{GOOD_POLYGON} plane 0\n', 'empty': ''})
    assert len(build('SOIDOTADataset',
                     tmp_path)) == 2  # an image without objects
    train = build(
        'SOIDOTADataset',
        tmp_path,
        test_mode=False,
        filter_cfg=dict(filter_empty_gt=True))
    assert len(train) == 1

    xml_root = tmp_path / 'xml'
    (xml_root / 'labels').mkdir(parents=True)
    (xml_root / 'images').mkdir()
    (xml_root / 'labels' / 'empty.xml').write_text('')
    write_image(xml_root / 'images' / 'empty.jpg')
    with pytest.raises(ValueError, match='no annotation files'):
        build('DroneVehicleDataset', xml_root, ann_file='images/')
    with pytest.raises(ValueError, match='no usable image'):
        build('DroneVehicleDataset', xml_root, ann_file='labels/')
    (xml_root / 'labels' / 'good.xml').write_text('<annotation></annotation>')
    write_image(xml_root / 'images' / 'good.jpg')
    dataset = build('DroneVehicleDataset', xml_root, ann_file='labels/')
    assert len(dataset) == 1
    assert skipped(dataset) == {('empty.xml', 'image',
                                 'unreadable annotation file')}

    coco = tmp_path / 'empty.json'
    coco.write_text('')
    with pytest.raises(ValueError, match=f'annotation file {coco} is empty'):
        build('SARDetDataset', tmp_path, ann_file='empty.json')


def test_unknown_class_names_stop_loading_and_aliases_are_mapped(tmp_path):
    dota_folder(
        tmp_path, {
            'a': f'{GOOD_POLYGON} container-crane 0\n',
            'b': f'{GOOD_POLYGON} plane 0\n'
        })
    with pytest.raises(
            ValueError,
            match=r"'container-crane' \(1 objects, first in .*a\.txt"):
        build('SOIDOTADataset', tmp_path)
    dataset = build(
        'SOIDOTADataset',
        tmp_path,
        class_aliases={'container-crane': 'harbor'})
    assert dataset.get_data_info(0)['instances'][0]['bbox_label'] == 12

    xml_root = tmp_path / 'xml'
    (xml_root / 'labels').mkdir(parents=True)
    (xml_root / 'images').mkdir()
    names = ['feright car', 'feright_car', 'truvk', 'freight car', 'car']
    objects = ''.join(
        f'<object><name>{n}</name><polygon>'
        '<x1>10</x1><y1>10</y1><x2>40</x2><y2>10</y2>'
        f'<x3>40</x3><y3>30</y3><x4>10</x4><y4>30</y4></polygon></object>'
        for n in names)
    (xml_root / 'labels' /
     'v.xml').write_text(f'<annotation>{objects}</annotation>')
    (xml_root / 'labels' / 'w.xml').write_text(
        '<annotation><object><name>tractor</name>'
        '<bndbox><xmin>1</xmin><ymin>1</ymin>'
        '<xmax>9</xmax><ymax>9</ymax></bndbox></object></annotation>')
    for stem in 'vw':
        write_image(xml_root / 'images' / f'{stem}.jpg')
    with pytest.raises(
            ValueError, match=r"'tractor' \(1 objects, first in .*w\.xml"):
        build('DroneVehicleDataset', xml_root, ann_file='labels/')
    (xml_root / 'labels' / 'w.xml').unlink()
    dataset = build('DroneVehicleDataset', xml_root, ann_file='labels/')
    assert [i['bbox_label']
            for i in dataset.get_data_info(0)['instances']] == [4, 4, 1, 4, 0]


def test_bad_coco_boxes_and_categories(tmp_path):
    (tmp_path / 'images').mkdir()
    write_image(tmp_path / 'images' / 'a.jpg')
    coco = dict(
        images=[
            dict(id=1, file_name='a.jpg', width=100, height=80),
            dict(id=2, file_name='missing.jpg', width=100, height=80)
        ],
        categories=[dict(id=7, name='tank'),
                    dict(id=3, name='ship')],
        annotations=[
            dict(id=1, image_id=1, category_id=3, bbox=[5, 5, 20, 10]),
            dict(id=2, image_id=1, category_id=7, bbox=[5, 5, 0, 10]),
            dict(id=3, image_id=1, category_id=7, bbox=[150, 5, 20, 10]),
            dict(id=4, image_id=1, category_id=7, bbox=[1, 2, 3])
        ])
    (tmp_path / 'ann.json').write_text(json.dumps(coco))
    dataset = build('SARDetDataset', tmp_path, ann_file='ann.json')
    assert len(dataset) == 1
    # labels by category name, whatever the json's ids
    assert dataset.get_data_info(0)['instances'] == [
        dict(bbox=[5, 5, 25, 15], bbox_label=0, ignore_flag=0)
    ]
    assert {(what, reason)
            for _, what, reason in skipped(dataset)
            } == {('image', 'image file not found'),
                  ('object', 'box of zero area'),
                  ('object', 'box entirely outside the 100x80 image'),
                  ('object', 'box with 3 numbers')}

    coco['categories'].append(dict(id=9, name='boat'))
    (tmp_path / 'ann.json').write_text(json.dumps(coco))
    with pytest.raises(ValueError, match=r"unknown class names: 'boat'"):
        build('SARDetDataset', tmp_path, ann_file='ann.json')


def test_image_that_breaks_during_training_is_replaced(tmp_path):
    dota_folder(tmp_path, {
        'a': f'{GOOD_POLYGON} plane 0\n',
        'b': f'{GOOD_POLYGON} ship 0\n'
    })
    pipeline = [
        dict(type='LoadImageOrSkip'),
        dict(type='mmdet.LoadAnnotations', box_type='qbox')
    ]
    dataset = build(
        'SOIDOTADataset', tmp_path, test_mode=False, pipeline=pipeline)
    (tmp_path / 'images' / 'a.png').write_bytes(
        b'truncated')  # breaks after loading
    skipped_before = LoadImageOrSkip.num_skipped
    for _ in range(5):
        assert dataset[0]['img_id'] == 'b'
    # The redraw may hit a.png again.
    assert LoadImageOrSkip.num_skipped >= skipped_before + 5
