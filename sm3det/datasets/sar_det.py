"""SOI-Det's SAR part: the SARDet-100K subset ("SARDet-50K"), horizontal
boxes."""
import json
import os.path as osp
from collections import defaultdict
from typing import List

from mmdet.datasets import BaseDetDataset
from mmrotate.registry import DATASETS

from .annotation_checks import SkipLog, hbox_problem, image_size_problem
from .soi_det_part import SOIDetPartMixin


def load_coco_json(path: str) -> dict:
    """A COCO detection json, with a clear error when it is missing, empty or
    malformed."""
    if not osp.isfile(path):
        raise FileNotFoundError(f'annotation file {path} does not exist')
    with open(path, encoding='utf-8') as f:
        text = f.read()
    if not text.strip():
        raise ValueError(f'annotation file {path} is empty')
    try:
        coco = json.loads(text)
    except json.JSONDecodeError as e:
        raise ValueError(
            f'annotation file {path} is not valid JSON: {e}') from e
    missing = [
        k for k in ('images', 'annotations', 'categories') if k not in coco
    ]
    if missing:
        raise ValueError(
            f'annotation file {path} is not a COCO detection file '
            f'(no {", ".join(missing)})')
    return coco


@DATASETS.register_module()
class SARDetDataset(SOIDetPartMixin, BaseDetDataset):
    """SAR images with horizontal boxes from a COCO json, 6 classes.

    Like mmdet's ``CocoDataset`` but reading the json with checks: category
    ids are mapped to labels by *name* (whatever the json's id order), an
    unknown category name stops loading with an error, missing or unreadable
    images and degenerate or outside boxes are left out with a warning naming
    the file (see :class:`SOIDetPartMixin`).

    Args:
        ann_file (str): the COCO json (relative to ``data_root``).
        data_prefix (dict): ``dict(img_path=<image folder>)``.
        dataset_name (str): the tag, ``'sar'``.
        class_aliases (dict, optional): category name -> class name mappings.

    Samples: ``img_id`` (the json's image id), ``img_path``, ``width``,
    ``height`` and ``instances`` with ``bbox`` = [x1, y1, x2, y2] pixels,
    ``bbox_label`` and ``ignore_flag`` (1 for ``iscrowd``). SAR images have
    one channel: load them with ``color_type='color'`` for 3 channels.
    """

    METAINFO = {
        'classes': ('ship', 'aircraft', 'car', 'tank', 'bridge', 'harbor'),
        'palette': [(220, 20, 60), (0, 130, 230), (0, 200, 0), (250, 170, 30),
                    (160, 32, 240), (0, 220, 220)],
    }

    def __init__(self, *args, dataset_name: str = 'sar', **kwargs):
        super().__init__(*args, dataset_name=dataset_name, **kwargs)

    def read_samples(self, skip_log: SkipLog) -> List[dict]:
        coco = load_coco_json(self.ann_file)
        label_of_category = {
            c['id']: self.label_of(c['name'], self.ann_file)
            for c in coco['categories']
        }
        objects_of_image = defaultdict(list)
        for ann in coco['annotations']:
            objects_of_image[ann['image_id']].append(ann)
        data_list = []
        for image in coco['images']:
            img_path = osp.join(self.data_prefix['img_path'],
                                image['file_name'])
            size, problem = image_size_problem(img_path)
            if problem:
                skip_log.add(img_path, 'image', problem)
                continue
            instances = []
            for ann in objects_of_image[image['id']]:
                bbox = ann.get('bbox', [])
                if ann.get('category_id') not in label_of_category:
                    problem = (f'category id {ann.get("category_id")} is not '
                               'in the categories')
                elif len(bbox) != 4:
                    problem = (f'box with {len(bbox)} numbers '
                               '(needs x, y, w, h)')
                else:
                    problem = hbox_problem(*bbox, *size)
                if problem:
                    skip_log.add(
                        f'{self.ann_file} (image {image["file_name"]})',
                        'object', problem)
                    continue
                label = label_of_category[ann['category_id']]
                if label is not None:
                    x, y, w, h = bbox
                    instances.append(
                        dict(
                            bbox=[x, y, x + w, y + h],
                            bbox_label=label,
                            ignore_flag=int(ann.get('iscrowd', 0))))
            data_list.append(
                dict(
                    img_id=image['id'],
                    file_name=image['file_name'],
                    img_path=img_path,
                    width=size[0],
                    height=size[1],
                    instances=instances))
        return data_list
