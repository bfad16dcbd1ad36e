"""PyTorch against onnxruntime on the CPU: time per image of each task,
detection counts and file sizes (``tools/analysis_tools/benchmark_onnx.py``).

Both sides do the same work on the same (H, W, 3) uint8 BGR array:
``SM3DetInferencer(array, return_datasample=True)`` (test pipeline, network,
the head's post-processing) against ``OnnxDetector(array)`` (numpy
preprocessing, the graph, numpy score threshold and NMS). Their calls are
interleaved, so that a noisy shared machine slows both alike, and the
median of the repeats after the warm-up ones is kept.
"""
import logging
import os.path as osp
import statistics
import time
from typing import Callable, List, NamedTuple, Optional, Sequence, Tuple

import cv2
import numpy as np
import torch
from mmengine.config import Config
from mmengine.logging import print_log
from mmrotate.registry import DATASETS

from ..apis import SM3DetInferencer, export_task
from ..apis.task_export import task_dataset_cfg
from ..deploy import OnnxDetector
from ..deploy.preprocess import preprocess
from ..imagery import SensorScaling, open_image
from ..models.layers.expert_dispatch import forced_expert_backend
from .exporter import write_onnx

#: Calibration images of a per-sensor export (evenly spaced, validation).
CALIBRATION_IMAGES = 8


class TaskTiming(NamedTuple):
    """One task of one model, timed.

    Attributes:
        scale: the model's name in the report (e.g. ``'mini'``).
        task: the task.
        image: where the image came from (``'P0000.png'``, ``'random'``).
        size: ``(width, height)`` of the image in pixels (the test scale).
        torch_ms, ort_ms: median milliseconds per image, whole call.
        ort_graph_ms: median milliseconds of the graph alone
            (``OnnxDetector.raw``; the rest of ``ort_ms`` is numpy
            preprocessing, score threshold and NMS).
        torch_count, ort_count: detections of the last run.
        onnx_mib: the ONNX file's size (MiB).
    """
    scale: str
    task: str
    image: str
    size: Tuple[int, int]
    torch_ms: float
    ort_ms: float
    ort_graph_ms: float
    torch_count: int
    ort_count: int
    onnx_mib: float

    @property
    def ratio(self) -> float:
        """PyTorch's time over onnxruntime's (above 1: ORT is faster)."""
        return self.torch_ms / self.ort_ms


class BackboneTiming(NamedTuple):
    """The shared backbone and neck of one model in PyTorch: the GridMoE
    layers' sorted dispatch against the gathered one of the exported graph
    (each expert gathers its tokens by a mask).

    Attributes:
        scale: as in :class:`TaskTiming`.
        size: ``(width, height)`` of the input in pixels.
        sparse_ms, gathered_ms: median milliseconds per image.
    """
    scale: str
    size: Tuple[int, int]
    sparse_ms: float
    gathered_ms: float


class SensorExport(NamedTuple):
    """The ONNX file of one task's per-sensor export (``export_task``).

    Attributes:
        scale, task: as in :class:`TaskTiming`.
        params: parameters of the full model and of the export.
        experts: experts kept and in all, summed over the MoE layers.
        onnx_mib: the export's ONNX file size (MiB); None when not made.
        note: why it was not made (empty when it was).
    """
    scale: str
    task: str
    params: Tuple[int, int] = (0, 0)
    experts: Tuple[int, int] = (0, 0)
    onnx_mib: Optional[float] = None
    note: str = ''


def interleaved_medians(calls: Sequence[Callable[[], object]], warmup: int,
                        repeats: int) -> List[float]:
    """Median milliseconds of each call, run in turns (``a, b, a, b ...``).

    Args:
        calls: functions of no arguments.
        warmup: rounds run first and not counted.
        repeats: rounds counted (at least 1).

    Returns:
        One median (ms) per call, in the order of ``calls``.
    """
    if repeats < 1:
        raise ValueError(f'repeats must be at least 1, got {repeats}')
    times = [[] for _ in calls]
    for round_ in range(warmup + repeats):
        for call, spent in zip(calls, times):
            start = time.perf_counter()
            call()
            if round_ >= warmup:
                spent.append(1e3 * (time.perf_counter() - start))
    return [statistics.median(spent) for spent in times]


def task_image(cfg: Config, task: str, size: Tuple[int, int],
               scaling: SensorScaling) -> Tuple[np.ndarray, str]:
    """An image with structure for timing: the first test image of
    ``task`` in ``cfg``'s test set, as 8-bit BGR resized to ``size``; a
    seeded random image where that set cannot be read.

    Args:
        cfg: the config whose test set gives the image.
        task: the task.
        size: ``(width, height)`` in pixels.
        scaling: the task loader's scaling (for images that are not 8-bit).

    Returns:
        ``(H, W, 3)`` uint8 array and its name (file name or ``'random'``).
    """
    try:
        path = DATASETS.build(task_dataset_cfg(
            cfg, task, 'test')).get_data_info(0)['img_path']
    except (OSError, ValueError, IndexError) as error:
        print_log(
            f'task {task}: no test image ({error}); timing a random image',
            logger='current',
            level=logging.WARNING)
        width, height = size
        return np.random.default_rng(0).integers(
            0, 256, (height, width, 3), dtype=np.uint8), 'random'
    image = open_image(path, 3, scaling=scaling).read_all()
    return cv2.resize(
        image, tuple(size), interpolation=cv2.INTER_LINEAR), osp.basename(path)


def load_model(config: str, checkpoint: Optional[str]) -> SM3DetInferencer:
    """The model on the CPU; without a checkpoint, random weights drawn
    from a fixed seed (the same detections from run to run)."""
    torch.manual_seed(0)
    return SM3DetInferencer(config, checkpoint, device='cpu')


def time_backbone(inferencer: SM3DetInferencer, scale: str, inputs: np.ndarray,
                  warmup: int, repeats: int) -> BackboneTiming:
    """The backbone and neck (``extract_feat``) on ``inputs``, the sorted
    dispatch against the gathered one (``forced_expert_backend('gather')``,
    as in the exported graph), interleaved.

    Args:
        inferencer: the model.
        scale: the model's name in the report.
        inputs: (1, 3, H, W) float32 preprocessed image.
        warmup, repeats: see :func:`interleaved_medians`.
    """
    image = torch.from_numpy(inputs)
    model = inferencer.model.eval()

    def gathered():
        with forced_expert_backend('gather'):
            model.extract_feat(image)

    with torch.no_grad():
        sparse_ms, gathered_ms = interleaved_medians(
            (lambda: model.extract_feat(image), gathered), warmup, repeats)
    return BackboneTiming(scale, (image.shape[3], image.shape[2]), sparse_ms,
                          gathered_ms)


def benchmark_model(
        inferencer: SM3DetInferencer,
        scale: str,
        tasks: Sequence[str],
        out_dir: str,
        image_cfg: Config,
        threads: int,
        warmup: int = 1,
        repeats: int = 5) -> Tuple[List[TaskTiming], BackboneTiming]:
    """Export each task of ``inferencer`` (no check) and time PyTorch
    against onnxruntime on its :func:`task_image` at the task's test scale;
    then time the backbone (:func:`time_backbone`) on the first task's
    image.

    Args:
        inferencer: the model (its torch thread count already set).
        scale: the model's name in the report; the ONNX files are
            ``<out_dir>/<scale>_<task>.onnx``.
        tasks: the tasks to time.
        out_dir: where the ONNX files and metadata go.
        image_cfg: the config whose test sets give the images.
        threads: onnxruntime's intra-op threads.
        warmup, repeats: see :func:`interleaved_medians`.
    """
    timings, backbone_inputs = [], None
    for task in tasks:
        inferencer.task = task
        onnx_path = osp.join(out_dir, f'{scale}_{task}.onnx')
        meta = write_onnx(inferencer, onnx_path)
        detector = OnnxDetector(onnx_path, num_threads=threads)
        size = tuple(meta.preprocess['scale'])
        image, name = task_image(image_cfg, task, size, inferencer.scaling)
        inputs, image_size, _ = preprocess(image, meta)
        if backbone_inputs is None:
            backbone_inputs = inputs
        results = {}

        def run_torch():
            results['torch'] = inferencer(
                image, return_datasample=True)['predictions'][0]

        def run_ort():
            results['ort'] = detector(image)

        print_log(
            f'{scale} {task}: timing {name} at {size[0]}x{size[1]}, '
            f'{warmup} + {repeats} runs each',
            logger='current')
        torch_ms, ort_ms, graph_ms = interleaved_medians(
            (run_torch, run_ort, lambda: detector.raw(inputs, image_size)),
            warmup, repeats)
        timings.append(
            TaskTiming(scale, task, name, size, torch_ms, ort_ms, graph_ms,
                       len(results['torch'].pred_instances),
                       len(results['ort'].scores),
                       osp.getsize(onnx_path) / 2**20))
    print_log(
        f'{scale}: timing the backbone, sorted and gathered experts',
        logger='current')
    return timings, time_backbone(inferencer, scale, backbone_inputs, warmup,
                                  repeats)


def sensor_exports(inferencer: SM3DetInferencer,
                   config: str,
                   checkpoint: Optional[str],
                   scale: str,
                   tasks: Sequence[str],
                   out_dir: str,
                   num_images: int = CALIBRATION_IMAGES) -> List[SensorExport]:
    """The ONNX file of each task's per-sensor export (threshold 0: the
    experts the task's validation images choose), where the validation set
    can be read (calibration needs it).

    Args:
        inferencer: the full model, loaded from ``config`` + ``checkpoint``
            (its weights are saved for ``export_task`` when there is no
            checkpoint).
        config, checkpoint: the full model's files (checkpoint None:
            random weights).
        scale, tasks, out_dir: as in :func:`benchmark_model`; the exports are
            ``<out_dir>/<scale>_<task>_export.{py,pth,onnx}``.
        num_images: calibration images per task.
    """
    cfg = Config.fromfile(config)
    exports = []
    for task in tasks:
        try:
            DATASETS.build(task_dataset_cfg(cfg, task, 'val'))
        except (FileNotFoundError, OSError) as error:
            print_log(
                f'{scale} {task}: no per-sensor export ({error})',
                logger='current',
                level=logging.WARNING)
            exports.append(
                SensorExport(
                    scale,
                    task,
                    note='not made: calibration needs the '
                    "task's validation images, not on this machine"))
            continue
        if checkpoint is None:
            checkpoint = osp.join(out_dir, f'{scale}_random_weights.pth')
            torch.save(
                dict(state_dict=inferencer.model.state_dict()), checkpoint)
        export = export_task(cfg, checkpoint, task, num_images=num_images)
        stem = osp.join(out_dir, f'{scale}_{task}_export')
        export.config.dump(f'{stem}.py')
        torch.save(export.checkpoint, f'{stem}.pth')
        write_onnx(
            SM3DetInferencer(f'{stem}.py', f'{stem}.pth', device='cpu'),
            f'{stem}.onnx')
        total = sum(len(share) for share in export.expert_shares.values())
        dropped = sum(
            len(export.expert_shares[name]) - len(kept)
            for name, kept in export.kept_experts.items())
        exports.append(
            SensorExport(scale, task,
                         (export.params_before, export.params_after),
                         (total - dropped, total),
                         osp.getsize(f'{stem}.onnx') / 2**20))
    return exports


def format_report(timings: Sequence[TaskTiming],
                  backbones: Sequence[BackboneTiming],
                  exports: Sequence[SensorExport]) -> str:
    """The timings, the backbones and the per-sensor exports as Markdown
    tables."""
    lines = [
        '| model | task | image | PyTorch ms | ORT ms (graph) | PyTorch / ORT '
        '| detections PyTorch / ORT | ONNX MiB |',
        '|---|---|---|---|---|---|---|---|'
    ]
    for t in timings:
        lines.append(f'| {t.scale} | {t.task} | {t.image} at {t.size[0]}x'
                     f'{t.size[1]} | {t.torch_ms:.1f} | {t.ort_ms:.1f} '
                     f'({t.ort_graph_ms:.1f}) | {t.ratio:.2f} | '
                     f'{t.torch_count} / {t.ort_count} | {t.onnx_mib:.1f} |')
    if backbones:
        lines += [
            '', '| model | backbone + neck, PyTorch | sorted dispatch ms | '
            'gathered (as exported) ms | gathered / sorted |',
            '|---|---|---|---|---|'
        ]
        lines += [
            f'| {b.scale} | {b.size[0]}x{b.size[1]} | {b.sparse_ms:.1f} | '
            f'{b.gathered_ms:.1f} | {b.gathered_ms / b.sparse_ms:.2f} |'
            for b in backbones
        ]
    if exports:
        lines += [
            '', '| model | task | per-sensor export: params (full -> export) '
            '| experts kept | ONNX MiB |', '|---|---|---|---|---|'
        ]
        for e in exports:
            if e.onnx_mib is None:
                lines.append(f'| {e.scale} | {e.task} | {e.note} | | |')
            else:
                lines.append(
                    f'| {e.scale} | {e.task} | {e.params[0] / 1e6:.3f}M -> '
                    f'{e.params[1] / 1e6:.3f}M | {e.experts[0]} / '
                    f'{e.experts[1]} | {e.onnx_mib:.1f} |')
    return '\n'.join(lines)
