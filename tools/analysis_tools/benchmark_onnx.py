"""PyTorch against onnxruntime on the CPU, per task: ms per image,
detections and ONNX file sizes.

    python tools/analysis_tools/benchmark_onnx.py [--scales mini paper] \\
        [--tasks sar dota dronevehicle] [--repeats 5] [--warmup 1] \\
        [--threads N] [--work-dir DIR] [--checkpoint MINI_CKPT]

For each model (``mini``: SM3Det-mini at its 256 px test scale; ``paper``:
the ConvNeXt-T SM3Det at 800 px, random weights) and task: the task is
exported to ONNX (``write_onnx``, no self-check), then
``SM3DetInferencer`` and ``OnnxDetector`` each detect the same array (the
task's first SOI-Det-mini test image resized to the test scale) in turns,
``--warmup`` + ``--repeats`` times; the table gives the medians, their
ratio and the detection counts (random weights detect what they detect:
the counts show the post-processing load). Both run on ``--threads``
threads (default: all cores; ``torch.set_num_threads`` and onnxruntime's
intra-op threads). Then each task's per-sensor export
(``export_task``, threshold 0, calibrated on the validation images, so
only where they are on the machine) is written to ONNX for its size.
Files go to ``--work-dir`` (default: a temporary folder, removed after).
"""
import argparse
import os
import os.path as osp
import sys
import tempfile
import time

import torch
from mmengine.config import Config
from mmengine.logging import print_log

sys.path.insert(0, osp.join(osp.dirname(osp.abspath(__file__)), '..', '..'))
from sm3det.export import benchmark  # noqa: E402

ROOT = osp.join(osp.dirname(osp.abspath(__file__)), '..', '..')
CONFIGS = {
    'mini': 'configs/sm3det/sm3det_convnext-mini_fpn_600it_soi-det-mini.py',
    'paper': 'configs/sm3det/sm3det_convnext-t_fpn_33k_soi-det.py',
}
TASKS = ('sar', 'dota', 'dronevehicle')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument(
        '--scales', nargs='+', choices=list(CONFIGS), default=list(CONFIGS))
    parser.add_argument(
        '--tasks', nargs='+', choices=TASKS, default=list(TASKS))
    parser.add_argument('--repeats', type=int, default=5)
    parser.add_argument('--warmup', type=int, default=1)
    parser.add_argument(
        '--threads',
        type=int,
        default=len(os.sched_getaffinity(0)),
        help='PyTorch and onnxruntime threads (default: all cores)')
    parser.add_argument(
        '--work-dir', help='where the ONNX files go (default: a temp dir)')
    parser.add_argument(
        '--checkpoint',
        help='weights of the mini model (default: random weights)')
    return parser.parse_args(argv)


def main(argv=None):
    start = time.perf_counter()
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    temp = None if args.work_dir else tempfile.TemporaryDirectory()
    work_dir = args.work_dir or temp.name
    os.makedirs(work_dir, exist_ok=True)
    mini_cfg = Config.fromfile(osp.join(ROOT, CONFIGS['mini']))
    timings, backbones, exports = [], [], []
    for scale in args.scales:
        config = osp.join(ROOT, CONFIGS[scale])
        checkpoint = args.checkpoint if scale == 'mini' else None
        print_log(
            f'{scale}: {CONFIGS[scale]}, weights '
            f'{checkpoint or "random"}',
            logger='current')
        inferencer = benchmark.load_model(config, checkpoint)
        tasks, backbone = benchmark.benchmark_model(inferencer, scale,
                                                    args.tasks, work_dir,
                                                    mini_cfg, args.threads,
                                                    args.warmup, args.repeats)
        timings += tasks
        backbones.append(backbone)
        exports += benchmark.sensor_exports(inferencer, config, checkpoint,
                                            scale, args.tasks, work_dir)
    if temp is not None:
        temp.cleanup()
    # The result the user ran the command for.
    print(f'{args.threads} threads (PyTorch and onnxruntime), median of '
          f'{args.repeats} runs after {args.warmup} warm-up, CPU\n')
    print(benchmark.format_report(timings, backbones, exports))
    print(f'\nwhole run: {time.perf_counter() - start:.0f} s')


if __name__ == '__main__':
    main()
