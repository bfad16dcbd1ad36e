"""Detect objects in images with a trained SM3Det (or single-task) model.

    python tools/demo/image_demo.py CONFIG CHECKPOINT INPUT [INPUT ...] \\
        --task dota [--out-dir outputs] [--score-thr 0.3] [--device cpu] \\
        [--sliding-window [--patch-size N] [--patch-overlap N]]

INPUT is an image, a folder (its images, with a progress bar) or a quoted
glob pattern ('scenes/*.tif'); ``.npy`` arrays are read too. 16-bit and
float images (SAR products) are mapped to 8-bit by the task's loader
``scaling`` (SAR: a per-image percentile stretch; the other tasks stop with
a message), and an unreadable file stops with an error naming it (see
docs/sensor_inputs.md). ``--task``
picks the test pipeline and the head (``sar``, ``dota``, ``dronevehicle``
for the SOI-Det configs; optional for a one-task model). Written under
``--out-dir``:

* ``vis/<image>``: the image with the predictions of score >= --score-thr
  drawn (the config's visualizer; ``--no-draw`` skips it: drawing decodes
  a large image whole);
* ``preds/<image>.json``: every prediction (boxes, scores, labels, class
  names, the box format);
* ``task1/Task1_<class>.txt``: for oriented-box tasks, the predictions in
  DOTA Task1 format (``image score x1 y1 ... x4 y4``).

``--sliding-window`` runs images of any size in patches (default: the
task's test scale, a quarter of it overlapping), ``--batch-size`` patches at
a time, merged by class-wise (rotated) NMS; ``.npy`` and uncompressed TIFF
scenes are read a window at a time (see sm3det/apis/large_image.py).
"""
import argparse
import os.path as osp
import sys

import numpy as np

sys.path.insert(0, osp.join(osp.dirname(osp.abspath(__file__)), '..', '..'))
from sm3det.apis import SM3DetInferencer  # noqa: E402
from sm3det.evaluation import write_dota_task1  # noqa: E402


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config', help='config file')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument(
        'inputs', nargs='+', help='images, folders or quoted glob patterns')
    parser.add_argument('--task', help='task (dataset) to predict')
    parser.add_argument(
        '--out-dir',
        default='outputs',
        help='output folder (default: outputs)')
    parser.add_argument(
        '--score-thr',
        type=float,
        default=0.3,
        help='lowest score drawn (default: 0.3)')
    parser.add_argument('--device', default='cpu', help='e.g. cpu, cuda:0')
    parser.add_argument(
        '--batch-size',
        type=int,
        default=1,
        help='images (or patches with --sliding-window) '
        'per forward pass')
    parser.add_argument(
        '--no-draw', action='store_true', help='write no drawn images')
    parser.add_argument(
        '--sliding-window',
        action='store_true',
        help='predict each image in overlapping patches')
    parser.add_argument(
        '--patch-size',
        type=int,
        help="patch side in pixels (default: the task's "
        'test scale)')
    parser.add_argument(
        '--patch-overlap',
        type=int,
        help='overlap of neighbouring patches in pixels '
        '(default: a quarter of the patch size)')
    parser.add_argument(
        '--merge-iou-thr',
        type=float,
        help='IoU threshold of the NMS merging patches '
        "(default: the head's test NMS threshold)")
    return parser.parse_args()


def main():
    args = parse_args()
    inferencer = SM3DetInferencer(
        args.config,
        args.checkpoint,
        task=args.task,
        device=args.device,
        show_progress=True)
    preds = inferencer(
        args.inputs,
        batch_size=args.batch_size,
        sliding_window=args.sliding_window,
        patch_size=args.patch_size,
        patch_overlap=args.patch_overlap,
        merge_iou_thr=args.merge_iou_thr,
        out_dir=args.out_dir,
        no_save_pred=False,
        no_save_vis=args.no_draw,
        pred_score_thr=args.score_thr)['predictions']
    lines = [
        f'{len(preds)} images ({inferencer.task}), '
        f'{sum(len(p["scores"]) for p in preds)} detections; '
        f'predictions in {osp.join(args.out_dir, "preds")}'
    ]
    if not args.no_draw:
        lines.append(f'drawn images in {osp.join(args.out_dir, "vis")}')
    if preds and preds[0]['box_type'] == 'rbox':
        task1_dir = osp.join(args.out_dir, 'task1')
        write_dota_task1(task1_dir, [
            dict(
                img_id=p['img_id'],
                bboxes=np.array(p['bboxes'], np.float32).reshape(-1, 5),
                scores=np.array(p['scores'], np.float32),
                labels=np.array(p['labels'], np.int64)) for p in preds
        ], inferencer.classes)
        lines.append(f'DOTA Task1 files in {task1_dir}')
    print('\n'.join(lines))  # the result a user ran the command for


if __name__ == '__main__':
    main()
