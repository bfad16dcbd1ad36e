"""Detect objects in images with a trained SM3Det (or single-task) model,
in PyTorch or as an ONNX export run by onnxruntime.

    python tools/demo/image_demo.py CONFIG CHECKPOINT INPUT [INPUT ...] \\
        --task dota [--out-dir outputs] [--score-thr 0.3] [--device cpu] \\
        [--sliding-window [--patch-size N] [--patch-overlap N]]
    python tools/demo/image_demo.py MODEL.onnx INPUT [INPUT ...] \\
        [--backend onnxruntime] [the same output and window options]

The second form runs an export of ``tools/deployment/export_onnx.py`` (one
task; its ``.json`` beside it) with ``sm3det.deploy``: numpy, onnxruntime
and OpenCV only, no torch needed. It writes the same ``preds/`` JSON files
and ``vis/`` drawings (drawn with OpenCV), no Task1 files.

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
scenes are read a window at a time (see sm3det/imagery/large_image.py).
"""
import argparse
import os
import os.path as osp
import sys

import numpy as np

sys.path.insert(0, osp.join(osp.dirname(osp.abspath(__file__)), '..', '..'))

BACKENDS = ('pytorch', 'onnxruntime')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument(
        'model', help='config file, or an ONNX export (MODEL.onnx)')
    parser.add_argument(
        'inputs',
        nargs='+',
        help='CHECKPOINT then images (PyTorch), or images (onnxruntime): '
        'files, folders or quoted glob patterns')
    parser.add_argument(
        '--backend',
        choices=BACKENDS,
        help='default: onnxruntime for a .onnx model, else pytorch')
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
    parser.add_argument(
        '--device', default='cpu', help='e.g. cpu, cuda:0 (PyTorch)')
    parser.add_argument(
        '--batch-size',
        type=int,
        default=1,
        help='images (or patches with --sliding-window) '
        'per forward pass (PyTorch)')
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
    args = parser.parse_args(argv)
    if args.backend is None:
        args.backend = ('onnxruntime'
                        if args.model.endswith('.onnx') else 'pytorch')
    if args.backend == 'pytorch':
        if len(args.inputs) < 2:
            parser.error('the PyTorch backend needs CONFIG CHECKPOINT INPUT '
                         '[INPUT ...]')
        args.checkpoint, args.inputs = args.inputs[0], args.inputs[1:]
    return args


def run_pytorch(args):
    """SM3DetInferencer: JSON, drawings and, for OBB tasks, Task1 files."""
    from sm3det.apis import SM3DetInferencer
    from sm3det.evaluation import write_dota_task1
    inferencer = SM3DetInferencer(
        args.model,
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
    lines = []
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
    return inferencer.task, preds, lines


def run_onnxruntime(args):
    """sm3det.deploy's OnnxDetector (no torch): JSON and drawings."""
    import json

    import cv2

    from sm3det.deploy import OnnxDetector
    from sm3det.deploy.outputs import detections_to_dict, draw_detections
    from sm3det.imagery.inputs import image_sources
    detector = OnnxDetector(args.model)
    meta = detector.meta
    if args.task not in (None, meta.task):
        raise SystemExit(f'image_demo: {args.model} detects task '
                         f'{meta.task!r}, not {args.task!r}')
    for folder in ('preds', ) + (() if args.no_draw else ('vis', )):
        os.makedirs(osp.join(args.out_dir, folder), exist_ok=True)
    preds = []
    for path in image_sources(args.inputs):
        if args.sliding_window:
            detections = detector.predict_by_patches(path, args.patch_size,
                                                     args.patch_overlap,
                                                     args.merge_iou_thr)
        else:
            detections = detector(path)
        img_id = osp.splitext(osp.basename(path))[0]
        pred = detections_to_dict(detections, meta.task, meta.box_type,
                                  meta.classes, img_id, path)
        with open(osp.join(args.out_dir, 'preds', f'{img_id}.json'), 'w') as f:
            json.dump(pred, f)
        if not args.no_draw:
            image = detector.read(path).read_all()
            name = osp.basename(path)
            if name.endswith('.npy'):
                name = f'{img_id}.png'
            cv2.imwrite(
                osp.join(args.out_dir, 'vis', name),
                draw_detections(image, detections, meta.classes,
                                args.score_thr))
        preds.append(pred)
    return meta.task, preds, []


def main(argv=None):
    args = parse_args(argv)
    run = run_pytorch if args.backend == 'pytorch' else run_onnxruntime
    task, preds, extra = run(args)
    lines = [
        f'{len(preds)} images ({task}), '
        f'{sum(len(p["scores"]) for p in preds)} detections; '
        f'predictions in {osp.join(args.out_dir, "preds")}'
    ]
    if not args.no_draw:
        lines.append(f'drawn images in {osp.join(args.out_dir, "vis")}')
    print('\n'.join(lines + extra))  # the result a user ran the command for


if __name__ == '__main__':
    main()
