"""Convert DroneVehicle's infrared part to cropped images and DOTA txt files.

Crops the 100-pixel white border of the 840x712 images and writes one DOTA
txt per image (see :mod:`sm3det.datasets.preparation.dronevehicle_to_dota`).
Objects that lie in the border only, or become degenerate, are dropped and
reported; unknown class names are reported and make the tool exit with
status 1.

    python tools/dataset_converters/dronevehicle_to_dota.py \
        --img-dir DroneVehicle/train/trainimgr \
        --xml-dir DroneVehicle/train/trainlabelr \
        --out-dir data/soi_det/dronevehicle/train
"""
import argparse
import os
import os.path as osp
import sys

sys.path.insert(0, osp.join(osp.dirname(osp.abspath(__file__)), '..', '..'))
from sm3det.datasets.preparation.dronevehicle_to_dota import \
    convert_dronevehicle  # noqa: E402


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
