"""Export one task of a trained (SM3Det) detector to ONNX, and check it.

:func:`export_onnx` writes ``<out_dir>/<name>.onnx`` (standard operators of
opset :data:`OPSET`, no custom domain), the metadata file beside it that the
runtime (:mod:`sm3det.deploy`) reads instead of the config, and then runs the
export with onnxruntime and the PyTorch model on a few of the task's test
images: the detections must agree (:mod:`.parity`) or it raises
:class:`ExportCheckError`.
"""
import logging
import os
import os.path as osp
import warnings
from typing import List, NamedTuple, Optional, Sequence, Union

import numpy as np
import onnx
import torch
from mmengine.logging import print_log
from mmrotate.registry import DATASETS

from ..apis.inferencer import SM3DetInferencer
from ..apis.task_export import task_dataset_cfg
from ..deploy import DeployMeta, Detections, OnnxDetector, write_meta
from ..deploy.metadata import meta_path as meta_file
from ..deploy.preprocess import preprocess
from ..deploy.runtime import INPUT_NAMES, OUTPUT_NAMES
from ..imagery import open_image
from .onnx_ops import traceable_attention
from .parity import BOX_TOL, SCORE_TOL, Agreement, compare_detections, favour
from .task_graph import TaskGraph

#: ONNX opset of the exports (GridSample needs 16, LayerNormalization 17).
OPSET = 17
#: Test-pipeline steps the runtime reproduces (others are refused).
RUNTIME_STEPS = ('LoadSensorImage', 'Resize', 'LoadAnnotations',
                 'ConvertBoxType', 'PackDetInputs')


class ExportCheckError(RuntimeError):
    """onnxruntime's detections differ from PyTorch's."""


class OnnxExport(NamedTuple):
    """What :func:`export_onnx` wrote and measured.

    Attributes:
        onnx_path, meta_path: the files written.
        meta: the metadata.
        agreements: ``(image name, Agreement)`` of the self-check.
    """
    onnx_path: str
    meta_path: str
    meta: DeployMeta
    agreements: List[tuple]


def export_onnx(config: str,
                checkpoint: str,
                task: Optional[str] = None,
                out_dir: str = 'work_dirs/onnx',
                check_images: Optional[Sequence[str]] = None,
                num_check_images: int = 3,
                box_tol: float = BOX_TOL,
                score_tol: float = SCORE_TOL) -> OnnxExport:
    """Export ``task`` of the model of ``config`` + ``checkpoint``.

    Args:
        config, checkpoint: the model (a full SM3Det, the output of
            ``tools/model_converters/export_task.py`` or a single-task
            detector).
        task: the task; may be omitted for a one-task model.
        out_dir: where ``<config name>_<task>.onnx`` and ``.json`` go
            (``<config name>.onnx`` if that name ends with the task).
        check_images: images to check the export on; default
            ``num_check_images`` evenly spaced images of the task's test set,
            plus a crop of the first to another size.
        box_tol, score_tol: largest differences allowed (pixels, score).

    Raises:
        ValueError: an unknown task, a checkpoint that does not fit, a head
            or test pipeline the export does not cover.
        ExportCheckError: onnxruntime and PyTorch disagree (the files stay
            for inspection).
    """
    inferencer = SM3DetInferencer(config, checkpoint, task=task, device='cpu')
    task = inferencer.task
    name = (
        osp.splitext(osp.basename(config))[0]
        if isinstance(config, str) else 'model')
    if not name.endswith(f'_{task}'):  # export_task.py's names end so
        name = f'{name}_{task}'
    os.makedirs(out_dir, exist_ok=True)
    onnx_path = osp.join(out_dir, f'{name}.onnx')
    meta = write_onnx(
        inferencer,
        onnx_path,
        source=dict(
            config=osp.abspath(config) if isinstance(config, str) else None,
            checkpoint=osp.abspath(checkpoint)))
    meta_path = meta_file(onnx_path)

    images = list(check_images) if check_images else task_test_images(
        inferencer, task, num_check_images)
    agreements = check_export(inferencer, OnnxDetector(onnx_path), images,
                              box_tol, score_tol)
    if not any(a.count[1] for _, a in agreements):
        print_log(
            'the check images gave no detections: the check compared '
            'nothing; give images with objects (--check-images)',
            logger='current',
            level=logging.WARNING)
    failed = [(name, a) for name, a in agreements if not a.ok]
    if failed:
        raise ExportCheckError(
            f'{onnx_path}: onnxruntime and PyTorch disagree on '
            f'{len(failed)} of {len(agreements)} images (tolerances '
            f'{box_tol} px, {score_tol}): ' +
            '; '.join(f'{name}: {a.describe()}' for name, a in failed))
    return OnnxExport(onnx_path, meta_path, meta, agreements)


def write_onnx(inferencer: SM3DetInferencer,
               onnx_path: str,
               source: Optional[dict] = None) -> DeployMeta:
    """Write the ONNX graph of ``inferencer``'s current task and its
    metadata file (no check; :func:`export_onnx` checks).

    Args:
        inferencer: the model (any weights) with its task chosen.
        onnx_path: the ``.onnx`` file to write; the metadata goes beside it.
        source: notes stored in the metadata (config, checkpoint).

    Returns:
        The metadata written.
    """
    task = inferencer.task
    graph = TaskGraph(inferencer.model.eval(), task).eval()
    meta = DeployMeta(
        task=task,
        classes=tuple(inferencer.classes),
        box_type=graph.box_type,
        opset=OPSET,
        preprocess=preprocess_settings(inferencer, task),
        postprocess=graph.postprocess._asdict(),
        source=dict(
            source or {}, torch=torch.__version__, onnx=onnx.__version__))
    trace(graph, meta, onnx_path)
    meta_path = write_meta(onnx_path, meta)
    print_log(
        f'wrote {onnx_path} ({osp.getsize(onnx_path) / 2**20:.1f} MiB, '
        f'opset {OPSET}) and {meta_path}',
        logger='current')
    return meta


def preprocess_settings(inferencer: SM3DetInferencer, task: str) -> dict:
    """The runtime's preprocessing: the task's test Resize and image
    scaling, the model's normalisation and padding."""
    resize, scaling = None, None
    for step in inferencer.specs[task].pipeline:
        kind = step['type'].split('.')[-1]
        if kind not in RUNTIME_STEPS:
            raise ValueError(
                f'task {task!r}: its test pipeline has {step["type"]}; the '
                f'ONNX runtime reproduces only {RUNTIME_STEPS}')
        if kind == 'Resize':
            resize = step
        elif kind == 'LoadSensorImage':
            scaling = step.get('scaling')
    if resize is None or 'scale' not in resize:
        raise ValueError(f'task {task!r}: no Resize with a scale in its '
                         'test pipeline')
    scale = resize['scale']
    scale = [scale, scale] if isinstance(scale, int) else list(scale)
    preprocessor = inferencer.cfg.model.data_preprocessor
    return dict(
        scale=scale,
        keep_ratio=bool(resize.get('keep_ratio', False)),
        interpolation=resize.get('interpolation', 'bilinear'),
        mean=[float(v) for v in preprocessor.mean],
        std=[float(v) for v in preprocessor.std],
        bgr_to_rgb=bool(preprocessor.get('bgr_to_rgb', False)),
        pad_size_divisor=int(preprocessor.get('pad_size_divisor', 1)),
        pad_value=float(preprocessor.get('pad_value', 0)),
        scaling=scaling.to_dict() if hasattr(scaling, 'to_dict') else scaling)


def trace(graph: TaskGraph, meta: DeployMeta, onnx_path: str) -> None:
    """Trace ``graph`` on an image of the test scale and write the ONNX file
    (image height and width, and the detection count, dynamic)."""
    width, height = meta.preprocess['scale']
    image = np.random.default_rng(0).integers(
        0, 256, (height, width, 3), dtype=np.uint8)
    args = tuple(map(torch.from_numpy, preprocess(image, meta)[:2]))
    dynamic = {'image': {2: 'height', 3: 'width'}}
    dynamic.update({name: {0: 'detections'} for name in OUTPUT_NAMES})
    trace_module(graph, args, onnx_path, INPUT_NAMES, OUTPUT_NAMES, dynamic)


def trace_module(module: torch.nn.Module, args: tuple, onnx_path: str,
                 input_names: Sequence[str], output_names: Sequence[str],
                 dynamic_axes: dict) -> None:
    """``torch.onnx.export`` as every export here runs it (``module`` in
    eval mode, TorchScript tracing, opset :data:`OPSET`, attention made
    traceable), then checked: a valid model of standard operators only.

    Raises:
        RuntimeError: the file holds operators of another domain.
    """
    # Also after the export: torch.onnx.export restores the mode the module
    # had, and a module built for the export is in training mode.
    module.eval()
    with torch.no_grad(), warnings.catch_warnings(), traceable_attention():
        # Tracer notes on shapes read as Python numbers: checked by parity.
        warnings.simplefilter('ignore')
        torch.onnx.export(
            module,
            args,
            onnx_path,
            dynamo=False,
            opset_version=OPSET,
            input_names=list(input_names),
            output_names=list(output_names),
            dynamic_axes=dynamic_axes)
    model = onnx.load(onnx_path)
    onnx.checker.check_model(model)
    custom = sorted({
        n.op_type
        for n in model.graph.node if n.domain not in ('', 'ai.onnx')
    })
    if custom:
        raise RuntimeError(f'{onnx_path} has non-standard operators {custom}')


def task_test_images(inferencer: SM3DetInferencer, task: str,
                     count: int) -> List[Union[str, np.ndarray]]:
    """``count`` evenly spaced images of the task's test set and a crop of
    the first (another size: the graph's dynamic shapes)."""
    dataset_cfg = task_dataset_cfg(inferencer.cfg, task, 'test')
    try:
        dataset = DATASETS.build(dataset_cfg)
    except (FileNotFoundError, OSError) as error:
        raise ValueError(
            f'task {task!r}: its test set cannot be read ({error}); give '
            'images to check the export on (--check-images)') from error
    if len(dataset) == 0:
        raise ValueError(f'task {task!r}: its test set is empty; give '
                         'images to check the export on (--check-images)')
    indices = np.linspace(0, len(dataset) - 1, min(count, len(dataset)))
    paths = [dataset.get_data_info(int(i))['img_path'] for i in indices]
    first = open_image(paths[0], scaling=inferencer.scaling).read_all()
    height, width = first.shape[:2]
    return paths + [first[:height * 3 // 4, :width * 2 // 3].copy()]


def check_export(inferencer: SM3DetInferencer, detector: OnnxDetector,
                 images: Sequence[Union[str, np.ndarray]], box_tol: float,
                 score_tol: float) -> List[tuple]:
    """``(image name, Agreement)`` of :func:`check_image` for each image,
    logged."""
    agreements = []
    for index, image in enumerate(images):
        name = image if isinstance(image, str) else \
            f'array {index} {image.shape[1]}x{image.shape[0]}'
        agreement = check_image(inferencer, detector, image, box_tol,
                                score_tol)
        print_log(
            f'check {osp.basename(name)}: {agreement.describe()}',
            logger='current')
        agreements.append((name, agreement))
    return agreements


def check_image(inferencer: SM3DetInferencer,
                detector: OnnxDetector,
                image: Union[str, np.ndarray],
                box_tol: float = BOX_TOL,
                score_tol: float = SCORE_TOL) -> Agreement:
    """onnxruntime's detections of ``image`` (a path or a BGR array)
    against PyTorch's, for the inferencer's current task.

    Where candidates of exactly equal score compete in NMS, the runtime
    breaks the tie as PyTorch did (:func:`~.parity.favour`): PyTorch's
    unstable sort leaves that choice undefined.
    """
    pred = inferencer(
        image, return_datasample=True)['predictions'][0].pred_instances
    reference = Detections(pred.bboxes.tensor.numpy(), pred.scores.numpy(),
                           pred.labels.numpy())
    pixels = detector.read(image).read_all()
    inputs, image_size, scale_factor = preprocess(pixels, detector.meta)
    candidates = detector.candidates(*detector.raw(inputs, image_size),
                                     scale_factor)
    order = favour(candidates, reference, box_tol, score_tol)
    ours = detector.nms(Detections(*(values[order] for values in candidates)))
    return compare_detections(ours, reference, box_tol, score_tol)
