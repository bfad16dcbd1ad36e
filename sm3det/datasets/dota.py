"""SOI-Det's optical part: DOTA-v1.0 800x800 patches with oriented boxes."""
import functools
import itertools
import logging
import operator
import os.path as osp
from typing import Dict, List, NamedTuple, Optional, Tuple

import numpy as np
from mmengine.logging import print_log
from mmrotate.datasets import DOTADataset
from mmrotate.registry import DATASETS

from .annotation_checks import (SkipLog, image_size_problem, narrow_polygons,
                                polygon_problems)
from .polygon_instances import instances_of
from .soi_det_part import SOIDetPartMixin, annotation_files

#: One object as read from a file: (flat polygon coordinates, class name as
#: written, difficulty). Coordinates may be malformed; they are checked later.
RawObject = Tuple[List[float], str, int]


class DotaObjects(NamedTuple):
    """The objects of one annotation file, as arrays.

    Attributes:
        polygons (np.ndarray): (N, 8) float64 ``x1, y1, ..., x4, y4`` in
            pixels; a row of NaN for an object that did not have 8
            coordinates.
        names (list[str]): the N class names as written.
        difficulties (np.ndarray): (N,) int64.
        odd_coords (dict[int, list[float]]): row -> coordinates as read, for
            the objects that did not have 8 coordinates.
    """
    polygons: np.ndarray
    names: List[str]
    difficulties: np.ndarray
    odd_coords: Dict[int, List[float]]

    @property
    def coords(self) -> List[List[float]]:
        """Each object's coordinates as read (any number of them)."""
        return [
            self.odd_coords.get(i, row)
            for i, row in enumerate(self.polygons.tolist())
        ]


def objects_from_raw(objects: List[RawObject]) -> DotaObjects:
    """:class:`DotaObjects` of a list of ``(coords, name, difficulty)``."""
    polygons = np.full((len(objects), 8), np.nan)
    odd_coords = {}
    for i, (coords, _, _) in enumerate(objects):
        if len(coords) == 8:
            polygons[i] = coords
        else:
            odd_coords[i] = coords
    return DotaObjects(polygons, [name for _, name, _ in objects],
                       np.array([d for _, _, d in objects], np.int64),
                       odd_coords)


def _number(token: str) -> float:
    try:
        return float(token)
    except ValueError:
        return float('nan')


def _is_number(token: str) -> bool:
    return _number(token) == _number(
        token)  # NaN is the only value unequal to itself


# The few class names of a data set, checked once each.
_name_is_number = functools.lru_cache(maxsize=1024)(_is_number)


class _BoundedCache(dict):
    """key -> function(key), forgotten when it grows past ``MAX_SIZE``.
    Coordinates written with one decimal in images of a few thousand pixels
    repeat, and so do class name + difficulty: a lookup is several times
    cheaper than parsing."""

    MAX_SIZE = 1 << 20

    def __init__(self, function):
        super().__init__()
        self.function = function

    def __missing__(self, key):
        if len(self) >= self.MAX_SIZE:
            self.clear()
        value = self[key] = self.function(key)
        return value


def _name_and_difficulty(tail: str) -> Tuple[str, int]:
    """(class name, difficulty) of the tokens after the coordinates, joined
    by spaces, as :func:`parse_dota_txt` reads them."""
    rest = tail.split(' ')
    difficulty = 0
    if len(rest) > 1 and rest[-1].isdigit():
        difficulty = int(rest.pop())
    return ' '.join(rest), difficulty


_floats = _BoundedCache(float)
_tails = _BoundedCache(_name_and_difficulty)
_first_8 = operator.itemgetter(slice(0, 8))
_after_8 = operator.itemgetter(slice(8, None))


def parse_dota_txt(path: str) -> List[RawObject]:
    """Objects of a DOTA txt file, one per line
    ``x1 y1 ... x4 y4 class difficulty``.

    The header lines of original DOTA files (``imagesource:...``, ``gsd:...``)
    and blank lines are skipped; the difficulty is optional (0). A class name
    written with spaces (e.g. ``freight car``) is read whole. Lines with fewer
    or more than 8 coordinates are returned as they are, for the caller to
    reject with a message. Line by line; :func:`read_dota_txt` gives the same
    objects as arrays, read in bulk.
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


def read_dota_txt(path: str) -> DotaObjects:
    """:func:`parse_dota_txt`'s objects as :class:`DotaObjects`, read in bulk.

    The file is read in one go and all coordinates are converted by one
    ``map`` through a cache of ``float(token)``. A file where some line does
    not start with exactly 8 numbers followed by a class name (malformed
    lines, NaN coordinates, a class name that reads as a number) or that is
    not valid UTF-8 is read by :func:`parse_dota_txt` instead, so the result
    is always the same.
    """
    try:
        with open(path, encoding='utf-8') as f:
            text = f.read()  # universal newlines, as iterating the file
    except UnicodeDecodeError:
        return objects_from_raw(parse_dota_txt(path))  # its own message
    # A token holding ':' is never a number: header lines.
    rows = [
        tokens for tokens in map(str.split, text.split('\n'))
        if tokens and ':' not in tokens[0]
    ]
    if not rows:
        return objects_from_raw([])
    try:
        if min(map(len, rows)) < 9 or any(
                map(_name_is_number, set(map(operator.itemgetter(8), rows)))):
            raise ValueError('not 8 coordinates and a name')
        polygons = np.array(
            list(
                map(_floats.__getitem__,
                    itertools.chain.from_iterable(map(_first_8,
                                                      rows))))).reshape(-1, 8)
        if np.isnan(polygons).any():
            raise ValueError('NaN coordinate')
    except ValueError:
        return objects_from_raw(parse_dota_txt(path))
    names, difficulties = zip(
        *map(_tails.__getitem__, map(' '.join, map(_after_8, rows))))
    return DotaObjects(polygons, list(names), np.array(difficulties, np.int64),
                       {})


class _CoordsAsRead:
    """Row -> the coordinates of an object as read: those of ``odd_coords``
    (objects without 8 coordinates), else its row of ``polygons``."""

    def __init__(self, polygons: np.ndarray, odd_coords: Dict[int, list]):
        self.polygons = polygons
        self.odd_coords = odd_coords

    def __getitem__(self, row: int):
        return self.odd_coords.get(row, self.polygons[row])


class _AnnotatedImage(NamedTuple):
    """One annotation file as read: ``problem`` is the skip-log entry
    (file, 'image', reason) of an image left out, whose ``objects`` is
    None."""
    ann_path: str
    img_path: str
    size: Optional[Tuple[int, int]]
    objects: Optional[DotaObjects]
    problem: Optional[Tuple[str, str, str]]


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
        min_polygon_side (float): objects whose minimum-area rectangle has a
            side under this many pixels are left out (counted in the log);
            0, the default, keeps them. The authors' loader uses 2
            (docs/authors_protocol.md).
        leave_out_empty_files (bool): leave out the images whose annotation
            file is empty (0 bytes), in test mode too, as the authors' loader
            does: DOTA's background patches are then never scored. The count
            is logged and kept in ``num_empty_files_left_out``.

    A stored sample holds its objects as arrays: ``polygons`` (N, 8) float64
    pixels, ``labels`` (N,) int64, ``ignore_flags`` (N,) bool;
    ``get_data_info`` turns them into mmdet's ``instances`` of 8-number
    quadrilaterals: load them with ``mmdet.LoadAnnotations(box_type='qbox')``
    and convert with ``ConvertBoxType(box_type_mapping=dict(gt_bboxes=
    'rbox'))`` (le90).
    """

    ANNOTATION_EXTENSIONS = ('txt', )

    def __init__(self,
                 *args,
                 dataset_name: str = 'dota',
                 img_suffix: str = 'png',
                 min_polygon_side: float = 0.,
                 leave_out_empty_files: bool = False,
                 **kwargs):
        # mmrotate 1.0.0rc1's DOTADataset has no such argument
        self.img_suffix = img_suffix
        self.min_polygon_side = min_polygon_side
        self.leave_out_empty_files = leave_out_empty_files
        super().__init__(*args, dataset_name=dataset_name, **kwargs)

    def parse_annotation_file(self, path: str) -> DotaObjects:
        return read_dota_txt(path)

    def read_samples(self, skip_log: SkipLog) -> List[dict]:
        files = self._read_files()
        parsed = [f for f in files if f.objects is not None]
        counts = [len(f.objects.names) for f in parsed]
        # All objects checked at once: numpy's cost per call is paid once
        # per dataset, not once per file.
        polygons = np.concatenate([np.zeros((0, 8))] +
                                  [f.objects.polygons for f in parsed])
        difficulties = np.concatenate([np.zeros(0, np.int64)] +
                                      [f.objects.difficulties for f in parsed])
        sizes = np.array([f.size for f in parsed], int).reshape(-1, 2)
        sizes = np.repeat(sizes, counts, axis=0)
        odd_coords, start = {}, 0
        for f, count in zip(parsed, counts):
            for i, coords in f.objects.odd_coords.items():
                odd_coords[start + i] = coords
            start += count
        problems = polygon_problems(polygons, sizes[:, 0], sizes[:, 1],
                                    _CoordsAsRead(polygons, odd_coords))
        labels = self._labels_of(parsed)
        keep = labels >= 0
        keep[list(problems)] = False
        num_narrow = 0
        if self.min_polygon_side > 0:
            narrow = keep.copy()
            narrow[keep] = narrow_polygons(polygons[keep],
                                           self.min_polygon_side)
            num_narrow = int(narrow.sum())
            keep &= ~narrow
        ignore_flags = difficulties > self.diff_thr
        problem_rows = iter(problems.items())
        next_problem = next(problem_rows, (len(polygons), None))
        data_list, start = [], 0
        for f in files:
            if f.objects is None:  # the whole image left out
                skip_log.add(*f.problem)
                continue
            end = start + len(f.objects.names)
            while next_problem[0] < end:  # in file order, as read
                skip_log.add(f.ann_path, 'object', next_problem[1])
                next_problem = next(problem_rows, (len(polygons), None))
            kept = start + np.flatnonzero(keep[start:end])
            start = end
            data_list.append(
                dict(
                    img_id=osp.splitext(osp.basename(f.ann_path))[0],
                    file_name=osp.basename(f.img_path),
                    img_path=f.img_path,
                    width=f.size[0],
                    height=f.size[1],
                    polygons=polygons[kept],
                    labels=labels[kept],
                    ignore_flags=ignore_flags[kept]))
        if self.leave_out_empty_files:
            print_log(
                f'[{self.dataset_name}] left out '
                f'{self.num_empty_files_left_out} images whose annotation '
                'file is empty (leave_out_empty_files, the authors\' '
                'protocol): they are neither trained on nor scored',
                logger='current',
                level=logging.INFO)
        if self.min_polygon_side > 0:
            print_log(
                f'[{self.dataset_name}] left out {num_narrow} objects with a '
                f'side under {self.min_polygon_side:g} px (min_polygon_side, '
                "the authors' protocol)",
                logger='current',
                level=logging.INFO)
        return data_list

    def _labels_of(self, files: List['_AnnotatedImage']) -> np.ndarray:
        """(N,) int64 class index of every object of ``files`` in order, -1
        for a name that is neither a class nor an alias (recorded by
        ``label_of``)."""
        names = list(
            itertools.chain.from_iterable(f.objects.names for f in files))
        labels = list(map(self._label_index.get, names))
        if None in labels:
            labels = [
                self.label_of(name, f.ann_path) for f in files
                for name in f.objects.names
            ]
            labels = [-1 if label is None else label for label in labels]
        return np.array(labels, np.int64)

    @staticmethod
    def num_objects(data_info: dict) -> int:
        return len(data_info['labels'])

    def get_data_info(self, idx: int) -> dict:
        """The sample with its objects as the ``instances`` that
        ``mmdet.LoadAnnotations`` reads (``bbox``: 8 floats, ``bbox_label``,
        ``ignore_flag`` 0/1); the stored sample holds them as arrays."""
        data_info = super().get_data_info(idx)
        data_info['instances'] = instances_of(
            data_info.pop('polygons'), data_info.pop('labels'),
            data_info.pop('ignore_flags'))
        return data_info

    def _read_files(self) -> List['_AnnotatedImage']:
        """Every annotation file's image size and objects, in file order;
        ``objects`` is None and ``problem`` says why when the image cannot
        be used."""
        files = []
        self.num_empty_files_left_out = 0
        for ann_path in annotation_files(self.ann_file,
                                         self.ANNOTATION_EXTENSIONS):
            if self.leave_out_empty_files and osp.getsize(ann_path) == 0:
                self.num_empty_files_left_out += 1
                continue
            stem = osp.splitext(osp.basename(ann_path))[0]
            img_path = osp.join(self.data_prefix['img_path'],
                                f'{stem}.{self.img_suffix}')
            size, problem = image_size_problem(img_path)
            if problem:
                files.append(
                    _AnnotatedImage(ann_path, img_path, None, None,
                                    (img_path, 'image', problem)))
                continue
            try:
                objects = self.parse_annotation_file(ann_path)
            except Exception as e:  # noqa: BLE001
                # any parser error: the file is unusable
                files.append(
                    _AnnotatedImage(ann_path, img_path, size, None,
                                    (ann_path, 'image',
                                     f'unreadable annotation file ({e})')))
                continue
            files.append(
                _AnnotatedImage(ann_path, img_path, size, objects, None))
        return files
