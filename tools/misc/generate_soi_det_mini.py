"""Write SOI-Det-mini: a small, procedurally drawn stand-in for SOI-Det.

Three parts in three sensor styles (SAR, optical, infrared), each in the real
data set's own annotation format and folder layout (see ``data/README.md``
and :mod:`sm3det.datasets.preparation.soi_det_mini`, which draws them).

    python tools/misc/generate_soi_det_mini.py --out data/soi_det_mini
"""
import argparse
import time

from sm3det.datasets.preparation.soi_det_mini import (WRITERS,
                                                      generate_soi_det_mini)


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument(
        '--out', default='data/soi_det_mini', help='output folder')
    parser.add_argument(
        '--num-train', type=int, default=160, help='training images per part')
    parser.add_argument(
        '--num-test', type=int, default=48, help='test images per part')
    parser.add_argument(
        '--size',
        type=int,
        default=256,
        help='image height in pixels (DroneVehicle images are 5/4 as wide)')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument(
        '--parts', nargs='+', default=list(WRITERS), choices=list(WRITERS))
    return parser.parse_args()


def main():
    args = parse_args()
    start = time.time()
    summary = generate_soi_det_mini(args.out, args.num_train, args.num_test,
                                    args.size, args.seed, args.parts)
    for part, splits in summary.items():
        for split, (images, instances) in splits.items():
            print(f'{part:13s} {split:5s} {images:5d} images '
                  f'{instances:6d} instances')
    print(f'SOI-Det-mini written to {args.out} in {time.time() - start:.1f} s')


if __name__ == '__main__':
    main()
