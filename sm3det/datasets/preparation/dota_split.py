"""Split DOTA images and their txt annotations into square patches.

SOI-Det uses DOTA-v1.0 cut into 800x800 patches with an overlap of 400 pixels
(docs/method.md section 2). mmrotate 1.x keeps its splitter in its source tree
(``tools/data/dota/split``), not in the pip package, so this is a small one
with the same conventions:

* windows of ``patch_size`` every ``patch_size - overlap`` pixels, the last
  one flush with the image border; smaller images are padded (BGR 104, 116,
  124, mmrotate's value);
* an object goes to a window when at least ``iof_thr`` (0.7) of its area lies
  inside; its polygon is shifted, not clipped, and gets difficulty 2 when it
  is cut by the window border;
* patch names ``<image>__<patch_size>__<x>___<y>.png`` and one txt per patch
  (empty for background patches, which training skips).

:func:`split_dota` splits a folder; ``tools/dataset_converters/dota_split.py``
is its command line.
"""
import glob
import os
import os.path as osp
from functools import partial

import cv2
import numpy as np

from ..annotation_checks import polygon_problem
from ..dota import parse_dota_txt
from .per_file import run_per_file

PAD_VALUE = (104, 116, 124)


def window_starts(length: int, patch_size: int, stride: int):
    """Start offsets of windows covering ``length`` pixels, the last flush
    with the end."""
    if length <= patch_size:
        return [0]
    starts = list(range(0, length - patch_size, stride))
    return starts + [length - patch_size]


def area_inside(polygon: np.ndarray, x0: int, y0: int, size: int) -> float:
    """Area (pixels^2) of a polygon's convex hull inside the window
    [x0, x0 + size)^2."""
    window = np.array(
        [[x0, y0], [x0 + size, y0], [x0 + size, y0 + size], [x0, y0 + size]],
        np.float32)
    hull = cv2.convexHull(polygon.astype(np.float32))
    area, _ = cv2.intersectConvexConvex(hull, window)
    return max(float(area), 0.0)


def split_image(ann_path, img_dir, out_dir, patch_size, overlap, iof_thr,
                img_ext):
    """Cut one image; returns (patches written, objects written, problems)."""
    stem = osp.splitext(osp.basename(ann_path))[0]
    img_path = osp.join(img_dir, f'{stem}.{img_ext}')
    img = cv2.imread(img_path, cv2.IMREAD_COLOR)
    if img is None:
        return 0, 0, [f'{img_path}: missing or unreadable image, skipped']
    height, width = img.shape[:2]
    objects, problems = [], []
    try:
        parsed = parse_dota_txt(ann_path)
    except (OSError, UnicodeDecodeError) as e:
        return 0, 0, [
            f'{ann_path}: unreadable annotation file ({e}), image skipped'
        ]
    for coords, name, difficulty in parsed:
        problem = polygon_problem(coords, width, height)
        if problem:
            problems.append(f'{ann_path}: object skipped: {problem}')
        else:
            polygon = np.asarray(coords, np.float64).reshape(4, 2)
            objects.append(
                (polygon, abs(cv2.contourArea(polygon.astype(np.float32))),
                 name, difficulty))
    stride = patch_size - overlap
    n_patches = n_objects = 0
    for y0 in window_starts(height, patch_size, stride):
        for x0 in window_starts(width, patch_size, stride):
            patch = np.empty((patch_size, patch_size, 3), np.uint8)
            patch[:] = PAD_VALUE
            crop = img[y0:y0 + patch_size, x0:x0 + patch_size]
            patch[:crop.shape[0], :crop.shape[1]] = crop
            lines = []
            for polygon, area, name, difficulty in objects:
                iof = area_inside(polygon, x0, y0, patch_size) / max(
                    area, 1e-6)
                if iof >= iof_thr:
                    shifted = (polygon - (x0, y0)).ravel()
                    level = difficulty if iof >= 1 - 1e-6 else 2
                    lines.append(' '.join(f'{v:.1f}' for v in shifted) +
                                 f' {name.replace(" ", "_")} {level}')
            patch_name = f'{stem}__{patch_size}__{x0}___{y0}'
            cv2.imwrite(
                osp.join(out_dir, 'images', f'{patch_name}.png'), patch)
            with open(osp.join(out_dir, 'annfiles', f'{patch_name}.txt'),
                      'w') as f:
                f.write(''.join(line + '\n' for line in lines))
            n_patches += 1
            n_objects += len(lines)
    return n_patches, n_objects, problems


def split_dota(img_dir,
               ann_dir,
               out_dir,
               patch_size=800,
               overlap=400,
               iof_thr=0.7,
               img_ext='png',
               workers=1):
    """Split every ``ann_dir/*.txt`` with its image; returns (images,
    patches, objects, problems)."""
    if overlap >= patch_size:
        raise ValueError(f'overlap ({overlap}) must be smaller than '
                         f'patch_size ({patch_size})')
    ann_paths = sorted(glob.glob(osp.join(ann_dir, '*.txt')))
    if not ann_paths:
        raise FileNotFoundError(f'no DOTA txt files in {ann_dir}')
    os.makedirs(osp.join(out_dir, 'images'), exist_ok=True)
    os.makedirs(osp.join(out_dir, 'annfiles'), exist_ok=True)
    job = partial(
        split_image,
        img_dir=img_dir,
        out_dir=out_dir,
        patch_size=patch_size,
        overlap=overlap,
        iof_thr=iof_thr,
        img_ext=img_ext)
    results = run_per_file(job, ann_paths, workers, chunksize=4)
    problems = [p for _, _, ps in results for p in ps]
    return (len(ann_paths), sum(r[0] for r in results),
            sum(r[1] for r in results), problems)
