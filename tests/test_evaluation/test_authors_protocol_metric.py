"""Under the authors' protocol a DOTA patch with an empty annotation file is
not scored: its false alarms cost no AP (docs/authors_protocol.md)."""
import cv2
import numpy as np
import pytest
import torch
from mmengine.structures import InstanceData
from mmrotate.datasets import DOTADataset
from mmrotate.registry import DATASETS

from sm3det.evaluation import SOIDetMetric

PATCHES = {
    'P0001__800__0___0': '10 10 60 10 60 40 10 40 plane 0\n',
    'P0001__800__400___0': '',  # background: the split tool writes nothing
}


@pytest.fixture
def dota_val(tmp_path):
    for sub in ('images', 'annfiles'):
        (tmp_path / sub).mkdir()
    for stem, text in PATCHES.items():
        (tmp_path / 'annfiles' / f'{stem}.txt').write_text(text)
        cv2.imwrite(
            str(tmp_path / 'images' / f'{stem}.png'),
            np.zeros((80, 100, 3), np.uint8))
    return tmp_path


def dota_map(root, **protocol):
    """DOTA mAP of a detector that finds the plane (score 0.8) and sees a
    plane in every background patch (score 0.9), and the test set."""
    dataset = DATASETS.build(
        dict(
            type='SOIDOTADataset',
            data_root=f'{root}/',
            ann_file='annfiles/',
            data_prefix=dict(img_path='images/'),
            test_mode=True,
            pipeline=[
                dict(type='mmdet.LoadAnnotations', box_type='qbox'),
                dict(
                    type='ConvertBoxType',
                    box_type_mapping=dict(gt_bboxes='rbox')),
                dict(
                    type='mmdet.PackDetInputs',
                    meta_keys=('img_id', 'dataset_name'))
            ],
            **protocol))
    classes = DOTADataset.METAINFO['classes']
    metric = SOIDetMetric(
        tasks=dict(dota=dict(box_type='rbox', classes=classes)))
    for i in range(len(dataset)):
        sample = dataset[i]['data_samples']
        gt = sample.gt_instances
        if len(gt):
            boxes, scores = gt.bboxes.tensor, torch.tensor([0.8])
        else:
            boxes = torch.tensor([[30., 30., 20., 10., 0.]])
            scores = torch.tensor([0.9])
        sample.pred_instances = InstanceData(
            bboxes=boxes, scores=scores, labels=torch.zeros(1, dtype=int))
        metric.process({}, [sample.to_dict()])
    return metric.compute_metrics(metric.results)['dota/mAP'], dataset


def test_empty_patch_left_out_of_the_dota_metric_only_under_authors(dota_val):
    paper_map, paper = dota_map(dota_val)
    assert len(paper) == 2
    assert paper_map == pytest.approx(0.5)  # the false alarm ranks first
    authors_map, authors = dota_map(dota_val, leave_out_empty_files=True)
    assert len(authors) == 1 and authors.num_empty_files_left_out == 1
    assert authors_map == pytest.approx(1.0)
