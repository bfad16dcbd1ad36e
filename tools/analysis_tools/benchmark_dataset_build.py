"""Time building SOI-Det's training datasets at the real set's size.

Writes SOI-Det-sized annotation sets into a temporary folder (fixed seed):

* sar: 47,097 images in one COCO json, 1-4 objects each (about 2.5);
* dota: 20,000 800x800 patches in DOTA txt, a fifth of them background
  (empty files), the rest with a long-tailed object count (median 12, mean
  about 30, capped at 1,500; a few patches have exactly 1,500);
* dronevehicle: 17,990 640x512 images in DOTA txt, 20-40 objects each, 2 %
  without objects.

The images are hard links to one small image per part: the datasets read
every image's header (its size), not its pixels. Then each part's training
dataset of ``configs/_base_/datasets/soi_det.py`` is built (``full_init``:
parse, check, filter, serialize) in its own process, as every rank does, and
its wall time and peak resident memory are printed (docs/benchmarks/
dataset_build.md)::

    python tools/analysis_tools/benchmark_dataset_build.py
    python tools/analysis_tools/benchmark_dataset_build.py --parts dota \
        --repeat 3 --keep /tmp/soi_det_sized
"""
import argparse
import json
import os
import os.path as osp
import resource
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np

REPO_ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..', '..'))
CONFIG = osp.join(REPO_ROOT, 'configs/_base_/datasets/soi_det.py')
PARTS = ('sar', 'dota', 'dronevehicle')
SIZES = dict(sar=47097, dota=20000, dronevehicle=17990)
IMAGE_SHAPES = dict(sar=(800, 800), dota=(800, 800), dronevehicle=(640, 512))
DOTA_MAX_OBJECTS = 1500


def random_quads(rng, num: int, width: int, height: int,
                 sides: tuple) -> np.ndarray:
    """(num, 8) rotated rectangles with sides in ``sides`` px, centres in the
    image."""
    centre = rng.uniform((0, 0), (width, height), size=(num, 2))
    w, h = (rng.uniform(*sides, size=num) for _ in range(2))
    angle = rng.uniform(0, np.pi, size=num)
    cos, sin = np.cos(angle), np.sin(angle)
    corners = []
    for sx, sy in ((-1, -1), (1, -1), (1, 1), (-1, 1)):
        dx, dy = sx * w / 2, sy * h / 2
        corners += [
            centre[:, 0] + dx * cos - dy * sin,
            centre[:, 1] + dx * sin + dy * cos
        ]
    return np.stack(corners, axis=1)


def write_txt_folder(folder: str, counts: np.ndarray, classes: tuple,
                     shape: tuple, sides: tuple, rng) -> int:
    """One DOTA txt per image (``counts[i]`` objects, 1 decimal like the
    preparation tools); returns the number of objects written."""
    os.makedirs(folder)
    for i, num in enumerate(counts):
        quads = random_quads(rng, int(num), *shape, sides)
        names = rng.integers(0, len(classes), size=int(num))
        difficulty = (rng.random(int(num)) < 0.1).astype(int)
        with open(osp.join(folder, f'{i:06d}.txt'), 'w') as f:
            f.write(''.join(' '.join(f'{v:.1f}'
                                     for v in quad) + f' {classes[c]} {d}\n'
                            for quad, c, d in zip(quads, names, difficulty)))
    return int(counts.sum())


def link_images(folder: str, num: int, ext: str, shape: tuple) -> None:
    """``num`` hard links ``<i>.<ext>`` to one image of ``shape`` (w, h)."""
    import cv2
    os.makedirs(folder)
    source = osp.join(folder, f'source.{ext}')
    cv2.imwrite(source, np.full((shape[1], shape[0], 3), 100, np.uint8))
    for i in range(num):
        os.link(source, osp.join(folder, f'{i:06d}.{ext}'))
    os.remove(source)


def write_sets(root: str, seed: int) -> dict:
    """Write the three annotation sets under ``root``; returns their object
    counts."""
    from mmengine.config import Config
    cfg = Config.fromfile(CONFIG)
    rng = np.random.default_rng(seed)
    objects = {}

    num = SIZES['sar']
    counts = rng.integers(1, 5, size=num)
    boxes = rng.uniform(2, 300, size=(int(counts.sum()), 4))
    image_of = np.repeat(np.arange(num), counts)
    coco = dict(
        images=[
            dict(id=i, file_name=f'{i:06d}.jpg', width=800, height=800)
            for i in range(num)
        ],
        categories=[
            dict(id=i + 1, name=c) for i, c in enumerate(cfg.sar_classes)
        ],
        annotations=[
            dict(
                id=k,
                image_id=int(image_of[k]),
                category_id=int(k % len(cfg.sar_classes)) + 1,
                bbox=[round(float(v), 1) for v in boxes[k]],
                area=float(boxes[k, 2] * boxes[k, 3]),
                iscrowd=0) for k in range(len(image_of))
        ])
    os.makedirs(osp.join(root, 'sar/Annotations'))
    with open(osp.join(root, 'sar/Annotations/train.json'), 'w') as f:
        json.dump(coco, f)
    link_images(
        osp.join(root, 'sar/JPEGImages/train'), num, 'jpg',
        IMAGE_SHAPES['sar'])
    objects['sar'] = int(counts.sum())

    num = SIZES['dota']
    counts = np.minimum(
        np.round(rng.lognormal(np.log(12), 1.3, size=num)),
        DOTA_MAX_OBJECTS).astype(int)
    counts[rng.random(num) < 0.2] = 0  # background patches
    counts[:5] = DOTA_MAX_OBJECTS  # the densest real patches (parking lots)
    objects['dota'] = write_txt_folder(
        osp.join(root, 'dota/train/annfiles'), counts, cfg.dota_classes,
        IMAGE_SHAPES['dota'], (3, 120), rng)
    link_images(
        osp.join(root, 'dota/train/images'), num, 'png', IMAGE_SHAPES['dota'])

    num = SIZES['dronevehicle']
    counts = rng.integers(20, 41, size=num)
    counts[rng.random(num) < 0.02] = 0
    objects['dronevehicle'] = write_txt_folder(
        osp.join(root, 'dronevehicle/train/labels'), counts,
        cfg.dronevehicle_classes, IMAGE_SHAPES['dronevehicle'], (8, 60), rng)
    link_images(
        osp.join(root, 'dronevehicle/train/images'), num, 'jpg',
        IMAGE_SHAPES['dronevehicle'])
    return objects


def peak_rss_mib() -> float:
    """This process's peak resident memory (MiB; Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def build_part(root: str, part: str) -> dict:
    """Build ``part``'s training dataset as a rank does; runs in a child."""
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    from mmrotate.registry import DATASETS

    import sm3det  # noqa: F401  (registers the datasets)
    init_default_scope('mmrotate')
    cfg = Config.fromfile(CONFIG)
    dataset_cfg = cfg[f'{part}_train']
    dataset_cfg.data_root = osp.join(root, part) + '/'
    dataset_cfg.pipeline = []  # built once, not part of the loading cost
    rss_before = peak_rss_mib()
    start, cpu_start = time.perf_counter(), time.process_time()
    dataset = DATASETS.build(dataset_cfg)  # lazy_init=False: full_init
    seconds = time.perf_counter() - start
    return dict(
        part=part,
        seconds=seconds,
        cpu_seconds=time.process_time() - cpu_start,
        images=len(dataset),
        peak_rss_mib=peak_rss_mib(),
        rss_after_imports_mib=rss_before)


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--parts', nargs='+', choices=PARTS, default=PARTS)
    parser.add_argument(
        '--repeat', type=int, default=1, help='builds of each part')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument(
        '--keep',
        help='write the sets to this folder and keep them (reused when it '
        'exists)')
    parser.add_argument('--child', nargs=2, help=argparse.SUPPRESS)
    return parser.parse_args()


def main():
    args = parse_args()
    if args.child:
        print(json.dumps(build_part(*args.child)))
        return
    root = args.keep or tempfile.mkdtemp(prefix='soi_det_sized_')
    try:
        if not osp.isdir(osp.join(root, 'sar')):
            start = time.perf_counter()
            objects = write_sets(root, args.seed)
            print(f'wrote the annotation sets to {root} in '
                  f'{time.perf_counter() - start:.0f} s: ' +
                  ', '.join(f'{part} {SIZES[part]} images / {objects[part]} '
                            'objects' for part in PARTS))
        # CPU time is the steadier number on a shared machine.
        print(f'{"part":<13} {"images":>7} {"wall s":>7} {"CPU s":>6} '
              f'{"peak RSS MiB":>13} {"after imports":>14}')
        for part in args.parts:
            for _ in range(args.repeat):
                child = subprocess.run(
                    [sys.executable, __file__, '--child', root, part],
                    capture_output=True,
                    text=True)
                if child.returncode:
                    sys.exit(f'building {part} failed:\n{child.stderr}')
                r = json.loads(child.stdout.strip().splitlines()[-1])
                print(f'{part:<13} {r["images"]:>7} {r["seconds"]:>7.2f} '
                      f'{r["cpu_seconds"]:>6.2f} {r["peak_rss_mib"]:>13.0f} '
                      f'{r["rss_after_imports_mib"]:>14.0f}')
    finally:
        if not args.keep:
            shutil.rmtree(root)


if __name__ == '__main__':
    main()
