"""Export one task of a trained model to ONNX (standard operators only) and
check it against PyTorch.

    python tools/deployment/export_onnx.py CONFIG CHECKPOINT --task sar \\
        [--out DIR] [--check-images IMG ...] [--num-check-images 3] \\
        [--box-tol 0.01] [--score-tol 1e-4]

Writes ``<DIR>/<config name>_<task>.onnx`` (no second ``_<task>`` when
the config's name ends with it, as export_task.py's do): image -> boxes,
scores and labels before the final NMS, through the task's GridMoE layers,
FPN and head; and the metadata ``.json`` beside it, which
``sm3det.deploy.OnnxDetector`` (numpy, onnxruntime and OpenCV only) reads.
CONFIG and CHECKPOINT: a full SM3Det with ``--task``, the output of
``export_task.py`` (one task) or a single-task model. The export is then run
by onnxruntime and by PyTorch on ``--num-check-images`` images of the task's
test set and a crop of the first (or on ``--check-images``): detections
after NMS must pair up with boxes within ``--box-tol`` pixels and scores
within ``--score-tol``, or the tool fails (exit status 1; the files stay for
inspection).
"""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.join(osp.dirname(osp.abspath(__file__)), '..', '..'))
from sm3det.export import ExportCheckError, export_onnx  # noqa: E402
from sm3det.export.parity import BOX_TOL, SCORE_TOL  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Export one task of a trained model to ONNX and check '
        'it against PyTorch')
    parser.add_argument('config')
    parser.add_argument('checkpoint')
    parser.add_argument(
        '--task', help='the task to export (optional for one-task models)')
    parser.add_argument(
        '--out', default='work_dirs/onnx', help='output folder')
    parser.add_argument(
        '--check-images',
        nargs='+',
        help="images to check on (default: the task's test set)")
    parser.add_argument(
        '--num-check-images',
        type=int,
        default=3,
        help='test-set images to check on (evenly spaced)')
    parser.add_argument('--box-tol', type=float, default=BOX_TOL)
    parser.add_argument('--score-tol', type=float, default=SCORE_TOL)
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    try:
        result = export_onnx(
            args.config,
            args.checkpoint,
            task=args.task,
            out_dir=args.out,
            check_images=args.check_images,
            num_check_images=args.num_check_images,
            box_tol=args.box_tol,
            score_tol=args.score_tol)
    except (ValueError, ExportCheckError) as error:
        raise SystemExit(f'export_onnx: {error}') from error
    # The result the user ran the command for.
    print(f'{result.onnx_path}\n{result.meta_path}\nchecked on '
          f'{len(result.agreements)} images: onnxruntime equals PyTorch')


if __name__ == '__main__':
    main()
