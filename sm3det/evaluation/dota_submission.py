"""Write oriented detections in the DOTA "Task1" submission format.

One text file per class, ``Task1_<class>.txt``, one line per detection:
``image_id score x1 y1 x2 y2 x3 y3 x4 y4`` (the four corners in pixels).
SM3Det evaluates DOTA on the 800x800 val patches without merging them back to
full images (docs/method.md section 2), so there ``image_id`` is the patch id
(:func:`write_dota_task1`). The DOTA test server wants full images:
:func:`write_dota_submission` merges patch predictions (patch names
``<image>__<rate>__<x>___<y>``) back with mmrotate's ``DOTAMetric``, and
:func:`read_dota_task1` / :func:`read_dota_ground_truth` let the merged
files be scored against full-image ground truth.
"""
import glob
import os
import os.path as osp
import re
from typing import Dict, List, Sequence, Tuple

import numpy as np
import torch
from mmrotate.evaluation import DOTAMetric
from mmrotate.structures.bbox import qbox2rbox, rbox2qbox

from ..datasets.dota import parse_dota_txt

#: Patch names written by DOTA splitters: image, size or rate, x, y.
PATCH_NAME = re.compile(
    r'^(?P<image>.+?)__(?P<rate>\d+(?:\.\d+)?)__(?P<x>\d+)___(?P<y>\d+)$')


def write_dota_task1(out_dir: str, samples: Sequence[dict],
                     classes: Sequence[str]) -> List[str]:
    """Write one ``Task1_<class>.txt`` per class into ``out_dir``.

    Args:
        out_dir: folder to write into (created when missing; files of the
            same names are overwritten).
        samples: one dict per image with ``img_id`` and numpy arrays
            ``bboxes`` (N, 5) cx,cy,w,h,angle (radians), ``scores`` (N,),
            ``labels`` (N,) class indices into ``classes``.
        classes: the class names.

    Returns:
        list[str]: the written file paths, in class order (a file is written
        for every class, empty when the class has no detection).
    """
    os.makedirs(out_dir, exist_ok=True)
    lines_per_class = [[] for _ in classes]
    for sample in samples:
        corners = rbox2qbox(torch.from_numpy(sample['bboxes'])).numpy()
        for corner, score, label in zip(corners, sample['scores'],
                                        sample['labels']):
            coords = ' '.join(f'{v:.2f}' for v in corner)
            lines_per_class[label].append(
                f'{sample["img_id"]} {score:.4f} {coords}\n')
    paths = []
    for name, lines in zip(classes, lines_per_class):
        path = osp.join(out_dir, f'Task1_{name}.txt')
        with open(path, 'w') as f:
            f.writelines(lines)
        paths.append(path)
    return paths


def parse_patch_name(img_id: str) -> Tuple[str, int, int]:
    """``'P0003__800__0___400'`` -> ``('P0003', 0, 400)``: the full image
    and the patch's top-left corner in it (pixels)."""
    match = PATCH_NAME.match(str(img_id))
    if match is None:
        raise ValueError(
            f'{img_id!r} is not a DOTA patch name '
            '<image>__<size or rate>__<x>___<y> (e.g. P0003__800__0___400, '
            'as tools/dataset_converters/dota_split.py writes them)')
    return match['image'], int(match['x']), int(match['y'])


def write_dota_submission(out_dir: str,
                          samples: Sequence[dict],
                          classes: Sequence[str],
                          iou_thr: float = 0.1) -> str:
    """Merge patch predictions to full images and write the Task1 zip.

    mmrotate's ``DOTAMetric.merge_results`` does the work (shift by the
    patch offset, class-wise rotated NMS, one ``Task1_<class>.txt`` per
    class, zipped); the patch names are checked first so that a wrong name
    gets a clear error.

    Args:
        out_dir: folder to create (it must not exist); the zip is
            ``<out_dir>/<basename of out_dir>.zip``.
        samples: one dict per patch, as for :func:`write_dota_task1`.
        classes: the class names.
        iou_thr: IoU threshold of the merging NMS.

    Returns:
        str: the zip's path.
    """
    for sample in samples:
        parse_patch_name(sample['img_id'])
    if osp.exists(out_dir):
        raise FileExistsError(f'{out_dir} exists; the DOTA submission is '
                              'written to a new folder: remove it or '
                              'choose another outfile_prefix')
    merger = DOTAMetric(
        format_only=True,
        merge_patches=True,
        outfile_prefix=out_dir,
        iou_thr=iou_thr)
    merger.dataset_meta = dict(classes=tuple(classes))
    return merger.merge_results(samples, out_dir)


def read_dota_task1(folder: str, classes: Sequence[str]) -> Dict[str, dict]:
    """Detections of ``Task1_<class>.txt`` files, by image id.

    Returns:
        dict: image id -> dict of numpy arrays ``bboxes`` (N, 5) cx, cy, w,
        h, angle (radians, le90), ``scores`` (N,), ``labels`` (N,).
    """
    per_image: Dict[str, List[Tuple[int, float, List[float]]]] = {}
    for label, name in enumerate(classes):
        path = osp.join(folder, f'Task1_{name}.txt')
        with open(path) as f:
            for line in f:
                fields = line.split()
                if len(fields) != 10:
                    raise ValueError(f'{path}: line {line.strip()!r} is not '
                                     '"image_id score x1 y1 ... x4 y4"')
                per_image.setdefault(fields[0], []).append(
                    (label, float(fields[1]), [float(v) for v in fields[2:]]))
    return {image: _as_rboxes(dets) for image, dets in per_image.items()}


def _as_rboxes(dets: List[Tuple[int, float, List[float]]]) -> dict:
    """(label, score, corners) tuples -> numpy ``bboxes``/``scores``/
    ``labels`` with the corners turned into le90 rotated boxes."""
    corners = torch.tensor([d[2] for d in dets], dtype=torch.float32)
    return dict(
        bboxes=qbox2rbox(corners.reshape(-1, 8)).numpy(),
        scores=np.array([d[1] for d in dets], np.float32),
        labels=np.array([d[0] for d in dets], np.int64))


def read_dota_ground_truth(ann_dir: str,
                           classes: Sequence[str]) -> Dict[str, dict]:
    """Full-image ground truth of a folder of DOTA txt files, by image id.

    Returns:
        dict: image id (file stem) -> ``bboxes`` (G, 5) le90 rotated boxes
        and ``labels`` (G,); every object counts (no difficulty filter).
    """
    paths = sorted(glob.glob(osp.join(ann_dir, '*.txt')))
    if not paths:
        raise FileNotFoundError(f'no DOTA txt files in {ann_dir}')
    truth = {}
    for path in paths:
        dets = []
        for coords, name, _ in parse_dota_txt(path):
            if name not in classes:
                raise ValueError(f'{path}: unknown class {name!r}; the '
                                 f'classes are {list(classes)}')
            if len(coords) != 8:
                raise ValueError(f'{path}: an object of {name!r} has '
                                 f'{len(coords)} coordinates, not 8')
            dets.append((classes.index(name), 1.0, coords))
        boxes = _as_rboxes(dets) if dets else dict(
            bboxes=np.zeros((0, 5), np.float32), labels=np.zeros(0, np.int64))
        truth[osp.splitext(osp.basename(path))[0]] = dict(
            bboxes=boxes['bboxes'], labels=boxes['labels'])
    return truth
