"""Tile DOTA-format images into large mosaics with their ground truth.

SOI-Det-mini's images are 256 px; a "large scene" to try the sliding-window
mode and the DOTA submission on is made of ``grid x grid`` of them, each
object's polygon shifted by its tile's offset:

    python tools/demo/dota_mosaic.py \\
        --img-dir data/soi_det_mini/dota/val/images \\
        --ann-dir data/soi_det_mini/dota/val/annfiles \\
        --out-dir data/soi_det_mini/dota_mosaic --grid 3

writes ``images/M0000.png`` ... and ``annfiles/M0000.txt`` ... (DOTA txt,
one mosaic per ``grid * grid`` images, in file order; left-over images are
not used).
"""
import argparse
import glob
import os
import os.path as osp
import sys
from typing import List, Sequence, Tuple

import cv2
import numpy as np

sys.path.insert(0, osp.join(osp.dirname(osp.abspath(__file__)), '..', '..'))
from sm3det.datasets.dota import parse_dota_txt  # noqa: E402


def make_mosaic(img_paths: Sequence[str], ann_paths: Sequence[str],
                grid: int) -> Tuple[np.ndarray, List[str]]:
    """One mosaic of ``grid * grid`` equally sized images, row by row.

    Returns:
        tuple: the (grid * H, grid * W, 3) BGR mosaic and its DOTA txt lines
        (``x1 y1 ... x4 y4 class difficulty``, in mosaic pixels).
    """
    if len(img_paths) != grid * grid or len(ann_paths) != grid * grid:
        raise ValueError(f'a {grid} x {grid} mosaic takes {grid * grid} '
                         f'images and annotation files, got '
                         f'{len(img_paths)} and {len(ann_paths)}')
    tiles = [cv2.imread(p, cv2.IMREAD_COLOR) for p in img_paths]
    for path, tile in zip(img_paths, tiles):
        if tile is None:
            raise ValueError(f'cannot read image {path}')
        if tile.shape != tiles[0].shape:
            raise ValueError(f'{path} is {tile.shape[1]}x{tile.shape[0]}, '
                             f'{img_paths[0]} {tiles[0].shape[1]}x'
                             f'{tiles[0].shape[0]}: tiles must be equal')
    height, width = tiles[0].shape[:2]
    rows = [
        np.concatenate(tiles[r * grid:(r + 1) * grid], axis=1)
        for r in range(grid)
    ]
    lines = []
    for i, path in enumerate(ann_paths):
        dx, dy = (i % grid) * width, (i // grid) * height
        for coords, name, difficulty in parse_dota_txt(path):
            shifted = np.asarray(coords, np.float64).reshape(-1, 2) + (dx, dy)
            lines.append(' '.join(f'{v:.1f}' for v in shifted.ravel()) +
                         f' {name} {difficulty}')
    return np.concatenate(rows, axis=0), lines


def write_mosaics(img_dir: str,
                  ann_dir: str,
                  out_dir: str,
                  grid: int = 3,
                  img_ext: str = 'png') -> List[str]:
    """Mosaics of the images of ``ann_dir/*.txt``; returns their paths."""
    ann_paths = sorted(glob.glob(osp.join(ann_dir, '*.txt')))
    count = len(ann_paths) // (grid * grid)
    if count == 0:
        raise ValueError(f'{ann_dir} has {len(ann_paths)} DOTA txt files; '
                         f'a {grid} x {grid} mosaic needs {grid * grid}')
    os.makedirs(osp.join(out_dir, 'images'), exist_ok=True)
    os.makedirs(osp.join(out_dir, 'annfiles'), exist_ok=True)
    written = []
    for m in range(count):
        anns = ann_paths[m * grid * grid:(m + 1) * grid * grid]
        imgs = [
            osp.join(img_dir,
                     osp.splitext(osp.basename(a))[0] + f'.{img_ext}')
            for a in anns
        ]
        mosaic, lines = make_mosaic(imgs, anns, grid)
        path = osp.join(out_dir, 'images', f'M{m:04d}.{img_ext}')
        cv2.imwrite(path, mosaic)
        with open(osp.join(out_dir, 'annfiles', f'M{m:04d}.txt'), 'w') as f:
            f.write(''.join(line + '\n' for line in lines))
        written.append(path)
    return written


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--img-dir', required=True)
    parser.add_argument(
        '--ann-dir', required=True, help='folder of DOTA txt files')
    parser.add_argument(
        '--out-dir', required=True, help='writes images/ and annfiles/ here')
    parser.add_argument(
        '--grid', type=int, default=3, help='tiles per side (default 3)')
    parser.add_argument('--img-ext', default='png')
    args = parser.parse_args()
    paths = write_mosaics(args.img_dir, args.ann_dir, args.out_dir, args.grid,
                          args.img_ext)
    print(f'{len(paths)} mosaics of {args.grid} x {args.grid} images in '
          f'{args.out_dir}')


if __name__ == '__main__':
    main()
