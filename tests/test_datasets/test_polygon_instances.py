"""The oriented parts store objects as arrays; what reaches the model is what
per-object dicts read by mmdet's LoadAnnotations gave before."""
import glob
import os.path as osp

import numpy as np
import pytest
from mmrotate.registry import DATASETS, TRANSFORMS
from PIL import Image

from sm3det.datasets.annotation_checks import polygon_problem
from sm3det.datasets.dota import parse_dota_txt
from sm3det.datasets.drone_vehicle import parse_dronevehicle_xml


def reference_instances(dataset):
    """img_id -> the instances the per-object loader made: every object read
    one by one, checked one by one, its class looked up by name."""
    classes = dataset.metainfo['classes']
    expected = {}
    for path in sorted(glob.glob(osp.join(dataset.ann_file, '*.*'))):
        stem = osp.splitext(osp.basename(path))[0]
        with Image.open(
                osp.join(dataset.data_prefix['img_path'],
                         f'{stem}.{dataset.img_suffix}')) as image:
            width, height = image.size
        parse = (
            parse_dronevehicle_xml
            if path.endswith('.xml') else parse_dota_txt)
        expected[stem] = [
            dict(
                bbox=coords,
                bbox_label=classes.index(
                    dataset.class_aliases.get(name, name)),
                ignore_flag=int(difficulty > dataset.diff_thr))
            for coords, name, difficulty in parse(path)
            if not polygon_problem(coords, width, height)
        ]
    return expected


@pytest.mark.parametrize('split', ['train', 'test'])
@pytest.mark.parametrize('index', [1, 2])  # dota, dronevehicle
def test_arrays_give_the_per_object_ground_truth(mini_config, split, index):
    loader = (
        mini_config.train_dataloader
        if split == 'train' else mini_config.val_dataloader)
    dataset = DATASETS.build(dict(loader.dataset.datasets[index], pipeline=[]))
    expected = reference_instances(dataset)
    load = TRANSFORMS.build(
        dict(type='mmdet.LoadAnnotations', with_bbox=True, box_type='qbox'))
    num_objects = 0
    for i in range(len(dataset)):
        info = dataset.get_data_info(i)
        assert info['instances'] == expected[info['img_id']]
        assert not {'polygons', 'labels', 'ignore_flags'} & set(info)
        got = load(info)
        want = load(dict(instances=expected[info['img_id']]))
        assert got['gt_bboxes'].tensor.dtype == want['gt_bboxes'].tensor.dtype
        np.testing.assert_array_equal(got['gt_bboxes'].tensor.numpy(),
                                      want['gt_bboxes'].tensor.numpy())
        for key in ('gt_bboxes_labels', 'gt_ignore_flags'):
            assert got[key].dtype == want[key].dtype
            np.testing.assert_array_equal(got[key], want[key])
        num_objects += len(info['instances'])
    assert num_objects > 0
    # images without objects are not trained on
    assert len(dataset) == sum(
        bool(v) or split == 'test' for v in expected.values())
