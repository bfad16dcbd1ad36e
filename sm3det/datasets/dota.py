"""SOI-Det's optical part: DOTA-v1.0 800x800 patches with oriented boxes."""
import os.path as osp
from typing import List, Tuple

from mmrotate.datasets import DOTADataset
from mmrotate.registry import DATASETS

from .annotation_checks import SkipLog, image_size_problem, polygon_problem
from .soi_det_part import SOIDetPartMixin, annotation_files

#: One object as read from a file: (flat polygon coordinates, class name as
#: written, difficulty). Coordinates may be malformed; they are checked later.
RawObject = Tuple[List[float], str, int]


def _number(token: str) -> float:
    try:
        return float(token)
    except ValueError:
        return float('nan')


def _is_number(token: str) -> bool:
    return _number(token) == _number(
        token)  # NaN is the only value unequal to itself


def parse_dota_txt(path: str) -> List[RawObject]:
    """Objects of a DOTA txt file, one per line
    ``x1 y1 ... x4 y4 class difficulty``.

    The header lines of original DOTA files (``imagesource:...``, ``gsd:...``)
    and blank lines are skipped; the difficulty is optional (0). A class name
    written with spaces (e.g. ``freight car``) is read whole. Lines with fewer
    or more than 8 coordinates are returned as they are, for the caller to
    reject with a message.
    """
    objects = []
    with open(path, encoding='utf-8') as f:
        for line in f:
            tokens = line.split()
            if not tokens or (':' in tokens[0] and not _is_number(tokens[0])):
                continue
            n_coords = 0
            while n_coords < len(tokens) and _is_number(tokens[n_coords]):
                n_coords += 1
            rest = tokens[n_coords:]
            difficulty = 0
            if len(rest) > 1 and rest[-1].isdigit():
                difficulty = int(rest.pop())
            objects.append(
                ([float(t)
                  for t in tokens[:n_coords]], ' '.join(rest), difficulty))
    return objects


@DATASETS.register_module()
class SOIDOTADataset(SOIDetPartMixin, DOTADataset):
    """DOTA-v1.0 in DOTA's txt format, with checked loading and a dataset tag.

    mmrotate's ``DOTADataset`` (its 15 classes, palette and ``diff_thr``)
    reading the same files, plus what SOI-Det needs: header
    lines are skipped, bad objects and unreadable images are left out with a
    warning naming the file (see :class:`SOIDetPartMixin`), and every sample
    carries ``dataset_name``.

    Args:
        ann_file (str): folder of ``<image stem>.txt`` files (relative to
            ``data_root``). An empty file is an image without objects (normal
            for patches cut from background).
        data_prefix (dict): ``dict(img_path=<image folder>)``.
        img_suffix (str): image extension, ``'png'`` for DOTA.
        diff_thr (int): objects of higher difficulty become ignored boxes.
        dataset_name (str): the tag, ``'dota'``.
        class_aliases (dict, optional): extra spelling -> class name mappings.

    Boxes are stored as 8-number quadrilaterals: load them with
    ``mmdet.LoadAnnotations(box_type='qbox')`` and convert with
    ``ConvertBoxType(box_type_mapping=dict(gt_bboxes='rbox'))`` (le90).
    """

    ANNOTATION_EXTENSIONS = ('txt', )

    def __init__(self,
                 *args,
                 dataset_name: str = 'dota',
                 img_suffix: str = 'png',
                 **kwargs):
        # mmrotate 1.0.0rc1's DOTADataset has no such argument
        self.img_suffix = img_suffix
        super().__init__(*args, dataset_name=dataset_name, **kwargs)

    def parse_annotation_file(self, path: str) -> List[RawObject]:
        return parse_dota_txt(path)

    def read_samples(self, skip_log: SkipLog) -> List[dict]:
        data_list = []
        for ann_path in annotation_files(self.ann_file,
                                         self.ANNOTATION_EXTENSIONS):
            stem = osp.splitext(osp.basename(ann_path))[0]
            img_path = osp.join(self.data_prefix['img_path'],
                                f'{stem}.{self.img_suffix}')
            size, problem = image_size_problem(img_path)
            if problem:
                skip_log.add(img_path, 'image', problem)
                continue
            try:
                objects = self.parse_annotation_file(ann_path)
            except Exception as e:  # noqa: BLE001
                # any parser error: the file is unusable
                skip_log.add(ann_path, 'image',
                             f'unreadable annotation file ({e})')
                continue
            instances = []
            for coords, name, difficulty in objects:
                label = self.label_of(name, ann_path)
                problem = polygon_problem(coords, *size)
                if problem:
                    skip_log.add(ann_path, 'object', problem)
                elif label is not None:
                    instances.append(
                        dict(
                            bbox=coords,
                            bbox_label=label,
                            ignore_flag=int(difficulty > self.diff_thr)))
            data_list.append(
                dict(
                    img_id=stem,
                    file_name=osp.basename(img_path),
                    img_path=img_path,
                    width=size[0],
                    height=size[1],
                    instances=instances))
        return data_list
