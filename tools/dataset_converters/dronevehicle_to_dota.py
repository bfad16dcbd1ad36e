"""Convert DroneVehicle's infrared part to cropped images and DOTA txt files.

The real DroneVehicle images are 840x712: the 640x512 picture inside a white
border of 100 pixels. This tool crops the border, shifts the xml polygons by
-100, clips them to the picture, and writes one DOTA txt per image (class
names with ``_`` for spaces, e.g. ``freight_car``; known misspellings such as
"feright car" or "truvk" mapped to the canonical class). Objects that lie in
the border only, or become degenerate, are dropped and reported; unknown class
names are reported and make the tool exit with status 1.

    python tools/dataset_converters/dronevehicle_to_dota.py \
        --img-dir DroneVehicle/train/trainimgr \
        --xml-dir DroneVehicle/train/trainlabelr \
        --out-dir data/soi_det/dronevehicle/train
"""
import argparse
import glob
import os
import os.path as osp
import sys
from functools import partial
from multiprocessing import Pool

import cv2
import numpy as np

sys.path.insert(0, osp.join(osp.dirname(osp.abspath(__file__)), '..', '..'))
from sm3det.datasets.annotation_checks import polygon_problem  # noqa: E402
from sm3det.datasets.drone_vehicle import DroneVehicleDataset  # noqa: E402
from sm3det.datasets.drone_vehicle import parse_dronevehicle_xml  # noqa: E402

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
    if workers > 1:
        with Pool(workers) as pool:
            results = pool.map(job, xml_paths, chunksize=16)
    else:
        results = [job(p) for p in xml_paths]
    return (len(xml_paths), sum(r[0] for r in results),
            [p for r in results
             for p in r[1]], [u for r in results for u in r[2]])


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument(
        '--img-dir', required=True, help='infrared images (e.g. trainimgr)')
    parser.add_argument(
        '--xml-dir', required=True, help='their xml labels (e.g. trainlabelr)')
    parser.add_argument(
        '--out-dir', required=True, help='writes images/ and labels/ here')
    parser.add_argument(
        '--border', type=int, default=100, help='white border width in pixels')
    parser.add_argument('--img-ext', default='jpg')
    parser.add_argument('--workers', type=int, default=os.cpu_count())
    args = parser.parse_args()
    images, objects, problems, unknown = convert_dronevehicle(
        args.img_dir, args.xml_dir, args.out_dir, args.border, args.img_ext,
        args.workers)
    for problem in problems:
        print(problem)
    print(f'{images} images, {objects} objects written to {args.out_dir}; '
          f'{len(problems)} problems')
    if unknown:
        names = sorted({name for name, _ in unknown})
        print(f'ERROR: {len(unknown)} objects with unknown class names '
              f'{names}, e.g. in {unknown[0][1]}; add the spellings to '
              'DroneVehicleDataset.CLASS_ALIASES')
        sys.exit(1)


if __name__ == '__main__':
    main()
