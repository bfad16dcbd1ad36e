"""Convert DroneVehicle's infrared part to cropped images and DOTA txt files.

The real DroneVehicle images are 840x712: the 640x512 picture inside a white
border of 100 pixels. The conversion crops the border, shifts the xml
polygons by -100, clips them to the picture, and writes one DOTA txt per
image (class names with ``_`` for spaces, e.g. ``freight_car``; known
misspellings such as "feright car" or "truvk" mapped to the canonical
class). Objects that lie in the border only, or become degenerate, are
dropped and reported, as are unknown class names.
:func:`convert_dronevehicle` converts a folder;
``tools/dataset_converters/dronevehicle_to_dota.py`` is its command line.
"""
import glob
import os
import os.path as osp
from functools import partial

import cv2
import numpy as np

from ..annotation_checks import polygon_problem
from ..drone_vehicle import DroneVehicleDataset, parse_dronevehicle_xml
from .per_file import run_per_file

CLASSES = DroneVehicleDataset.METAINFO['classes']


def convert_one(xml_path, img_dir, out_dir, border, img_ext):
    """Convert one image; returns (objects written, problems, unknown class
    names)."""
    stem = osp.splitext(osp.basename(xml_path))[0]
    img_path = osp.join(img_dir, f'{stem}.{img_ext}')
    img = cv2.imread(img_path, cv2.IMREAD_COLOR)
    if img is None:
        return 0, [f'{img_path}: missing or unreadable image, skipped'], []
    height, width = img.shape[:2]
    if height <= 2 * border or width <= 2 * border:
        return 0, [
            f'{img_path}: {width}x{height} image is too small for a '
            f'{border}-pixel border, skipped'
        ], []
    try:
        objects = parse_dronevehicle_xml(xml_path)
    except Exception as e:  # noqa: BLE001 - ParseError/OSError: unusable file
        return 0, [
            f'{xml_path}: unreadable annotation file ({e}), image skipped'
        ], []
    out_w, out_h = width - 2 * border, height - 2 * border
    lines, problems, unknown = [], [], []
    for coords, name, difficulty in objects:
        name = DroneVehicleDataset.CLASS_ALIASES.get(name, name)
        if name not in CLASSES:
            unknown.append((name, xml_path))
            continue
        problem = polygon_problem(coords)
        if not problem:
            points = np.asarray(coords, np.float64).reshape(4, 2) - border
            points[:, 0] = points[:, 0].clip(0, out_w)
            points[:, 1] = points[:, 1].clip(0, out_h)
            # after clipping, a polygon lying in the border has collapsed to
            # zero area
            problem = polygon_problem(points.ravel(), out_w, out_h)
        if problem:
            problems.append(f'{xml_path}: object skipped: {problem}')
            continue
        lines.append(' '.join(f'{v:.1f}' for v in points.ravel()) +
                     f' {name.replace(" ", "_")} {difficulty}')
    cv2.imwrite(
        osp.join(out_dir, 'images', f'{stem}.{img_ext}'),
        img[border:height - border, border:width - border])
    with open(osp.join(out_dir, 'labels', f'{stem}.txt'), 'w') as f:
        f.write(''.join(line + '\n' for line in lines))
    return len(lines), problems, unknown


def convert_dronevehicle(img_dir,
                         xml_dir,
                         out_dir,
                         border=100,
                         img_ext='jpg',
                         workers=1):
    """Convert every ``xml_dir/*.xml``; returns (images, objects, problems,
    unknown names)."""
    xml_paths = sorted(glob.glob(osp.join(xml_dir, '*.xml')))
    if not xml_paths:
        raise FileNotFoundError(f'no xml files in {xml_dir}')
    os.makedirs(osp.join(out_dir, 'images'), exist_ok=True)
    os.makedirs(osp.join(out_dir, 'labels'), exist_ok=True)
    job = partial(
        convert_one,
        img_dir=img_dir,
        out_dir=out_dir,
        border=border,
        img_ext=img_ext)
    results = run_per_file(job, xml_paths, workers, chunksize=16)
    return (len(xml_paths), sum(r[0] for r in results),
            [p for r in results
             for p in r[1]], [u for r in results for u in r[2]])
