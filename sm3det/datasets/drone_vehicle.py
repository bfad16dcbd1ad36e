"""SOI-Det's infrared part: DroneVehicle (infrared images, oriented boxes)."""
import xml.etree.ElementTree as ET
from typing import List

from mmrotate.registry import DATASETS

from .dota import (DotaObjects, RawObject, SOIDOTADataset, objects_from_raw,
                   read_dota_txt)


def _coordinate(element, tag: str) -> float:
    """A coordinate of an xml element; NaN when absent or not a number."""
    text = element.findtext(tag)
    try:
        return float(text)
    except (TypeError, ValueError):
        return float('nan')


def parse_dronevehicle_xml(path: str) -> List[RawObject]:
    """Objects of a DroneVehicle VOC-style xml file.

    Each ``<object>`` holds ``<name>`` and either ``<polygon>`` with
    ``<x1>..<y4>`` or, in a few files of the real set, ``<bndbox>`` with
    ``xmin..ymax`` (returned as its 4 corners). An object with neither, or
    with missing corners, comes back with fewer than 8 coordinates.
    """
    root = ET.parse(path).getroot()
    objects = []
    for obj in root.iter('object'):
        name = ' '.join((obj.findtext('name') or '').split())
        difficult = obj.findtext('difficult') or '0'
        polygon, box = obj.find('polygon'), obj.find('bndbox')
        coords = []
        if polygon is not None:
            for k in range(1, 5):
                if polygon.find(f'x{k}') is None or polygon.find(
                        f'y{k}') is None:
                    break
                coords += [
                    _coordinate(polygon, f'x{k}'),
                    _coordinate(polygon, f'y{k}')
                ]
        elif box is not None:
            x1, y1, x2, y2 = (
                _coordinate(box, t) for t in ('xmin', 'ymin', 'xmax', 'ymax'))
            coords = [x1, y1, x2, y1, x2, y2, x1, y2]
        objects.append(
            (coords, name, int(difficult) if difficult.isdigit() else 0))
    return objects


@DATASETS.register_module()
class DroneVehicleDataset(SOIDOTADataset):
    """DroneVehicle's infrared images with oriented boxes, 5 classes.

    Reads either the data set's own xml files or their conversion to DOTA
    txt (``tools/dataset_converters/dronevehicle_to_dota.py``, which also
    crops the 100-pixel white border); the format is the extension of the
    files in ``ann_file`` (one format per folder). Arguments as
    :class:`SOIDOTADataset`; ``img_suffix`` defaults to ``'jpg'`` and
    ``dataset_name`` to ``'dronevehicle'``.

    The real xml spells classes in several ways ("feright car", "feright_car",
    "truvk", ...): ``CLASS_ALIASES`` maps the known ones; any other unknown
    name stops loading with an error listing the files.
    """

    METAINFO = {
        'classes': ('car', 'truck', 'bus', 'van', 'freight car'),
        'palette': [(0, 200, 0), (230, 120, 0), (220, 20, 60), (0, 120, 230),
                    (160, 32, 240)],
    }
    CLASS_ALIASES = {
        'feright car': 'freight car',
        'feright_car': 'freight car',
        'feright': 'freight car',
        'freight_car': 'freight car',
        'freightcar': 'freight car',
        'truvk': 'truck',
    }
    ANNOTATION_EXTENSIONS = ('xml', 'txt')

    def __init__(self,
                 *args,
                 dataset_name: str = 'dronevehicle',
                 img_suffix: str = 'jpg',
                 **kwargs):
        super().__init__(
            *args, dataset_name=dataset_name, img_suffix=img_suffix, **kwargs)

    def parse_annotation_file(self, path: str) -> DotaObjects:
        if path.endswith('.xml'):
            return objects_from_raw(parse_dronevehicle_xml(path))
        return read_dota_txt(path)
