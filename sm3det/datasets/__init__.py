"""SOI-Det's three parts, their checked loading and data transforms.

Registered into MMRotate 1.x's registries: ``SARDetDataset`` (SAR, horizontal
boxes, COCO json), ``SOIDOTADataset`` (DOTA-v1.0 patches, oriented boxes, DOTA
txt), ``DroneVehicleDataset`` (infrared, oriented boxes, xml or DOTA txt) and
the transforms ``LoadSensorImage`` (8-bit, 16-bit or float images, scaled to
8-bit as configured: ``sensor_image.py``, with ``sm3det.imagery``'s
reading and scaling) and ``LoadImageOrSkip`` (the same,
skipping unreadable files in training); ``FilterSmallOrOutsideBoxes``
(``box_filters.py``) drops boxes as the authors' rotation does. The 2:1:1
training batches come from ``SeededConcatDataset`` (mmengine's
``ConcatDataset``) with ``ResumableMultiSourceSampler`` (mmdet's
``MultiSourceSampler``), which resume exactly and instantly (see
``resumable_sampling.py`` and ``configs/_base_/datasets/soi_det.py``);
``SingleSourceSampler`` gives the UniDet baseline's single-dataset batches.
"""
from .annotation_checks import (SkipLog, hbox_problem, image_size_problem,
                                narrow_polygons, polygon_problem,
                                polygon_problems)
from .box_filters import FilterSmallOrOutsideBoxes
from .dota import DotaObjects, SOIDOTADataset, parse_dota_txt, read_dota_txt
from .drone_vehicle import DroneVehicleDataset, parse_dronevehicle_xml
from .resumable_sampling import (ResumableMultiSourceSampler,
                                 SeededConcatDataset, SeededIndex)
from .sar_det import SARDetDataset, load_coco_json
from .sensor_image import LoadSensorImage
from .single_source_sampler import SingleSourceSampler
from .soi_det_part import SOIDetPartMixin
from .subset_loader import build_subset_loader
from .transforms import LoadImageOrSkip

__all__ = [
    'SOIDetPartMixin',
    'SARDetDataset',
    'SOIDOTADataset',
    'DroneVehicleDataset',
    'LoadImageOrSkip',
    'LoadSensorImage',
    'SkipLog',
    'image_size_problem',
    'polygon_problem',
    'polygon_problems',
    'narrow_polygons',
    'hbox_problem',
    'parse_dota_txt',
    'read_dota_txt',
    'DotaObjects',
    'FilterSmallOrOutsideBoxes',
    'parse_dronevehicle_xml',
    'load_coco_json',
    'SingleSourceSampler',
    'ResumableMultiSourceSampler',
    'SeededConcatDataset',
    'SeededIndex',
    'build_subset_loader',
]
