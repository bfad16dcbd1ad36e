"""Split DOTA images and their txt annotations into square patches.

SOI-Det uses DOTA-v1.0 cut into 800x800 patches with an overlap of 400 pixels
(docs/method.md section 2), with mmrotate's splitting conventions (see
:mod:`sm3det.datasets.preparation.dota_split`).

    python tools/dataset_converters/dota_split.py \
        --img-dir DOTA/train/images --ann-dir DOTA/train/labelTxt-v1.0 \
        --out-dir data/soi_det/dota/train
"""
import argparse
import os
import os.path as osp
import sys

sys.path.insert(0, osp.join(osp.dirname(osp.abspath(__file__)), '..', '..'))
from sm3det.datasets.preparation.dota_split import split_dota  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--img-dir', required=True)
    parser.add_argument(
        '--ann-dir', required=True, help='folder of DOTA txt files')
    parser.add_argument(
        '--out-dir', required=True, help='writes images/ and annfiles/ here')
    parser.add_argument('--patch-size', type=int, default=800)
    parser.add_argument('--overlap', type=int, default=400)
    parser.add_argument('--iof-thr', type=float, default=0.7)
    parser.add_argument('--img-ext', default='png')
    parser.add_argument('--workers', type=int, default=os.cpu_count())
    args = parser.parse_args()
    images, patches, objects, problems = split_dota(args.img_dir, args.ann_dir,
                                                    args.out_dir,
                                                    args.patch_size,
                                                    args.overlap, args.iof_thr,
                                                    args.img_ext, args.workers)
    for problem in problems:
        print(problem)
    print(f'{images} images -> {patches} patches with {objects} objects in '
          f'{args.out_dir}; {len(problems)} problems')


if __name__ == '__main__':
    main()
