"""SM3DetInferencer: mmdet's DetInferencer for any task of a (multi-task)
model, and a sliding-window mode for images of any size.

    inferencer = SM3DetInferencer(CONFIG, CHECKPOINT, device='cpu')
    out = inferencer('scene.png', task='dota', return_datasample=True)
    out['predictions'][0].pred_instances.bboxes  # RotatedBoxes, le90
    inferencer('scene.npy', task='dota', sliding_window=True, batch_size=8)

What mmdet's ``DetInferencer`` does is kept (config and checkpoint
loading, batching, the config's visualizer, JSON dumps); this class adds the
task: it picks that test dataset's pipeline from the config, tags every
sample with its ``dataset_name`` (SM3Det's heads are chosen by it) and gives
the task's class names to the visualizer and the outputs. Images are read
by ``LoadSensorImage`` with the task loader's ``scaling`` (16-bit and float
images, docs/sensor_inputs.md), for prediction and drawing alike.
"""
import os.path as osp
import warnings
from typing import Dict, List, NamedTuple, Optional, Sequence, Union

import mmengine
import numpy as np
import torch
from mmdet.apis import DetInferencer
from mmdet.structures import DetDataSample
from mmdet.structures.bbox import HorizontalBoxes, get_box_tensor
from mmengine.dataset import Compose, pseudo_collate
from mmengine.runner import load_state_dict
from mmrotate.structures.bbox import RotatedBoxes
from mmrotate.utils import merge_results_by_nms
from torch import nn

from ..datasets.sensor_image import LoadSensorImage
from ..deploy.metadata import BOX_FORMATS
from ..deploy.preprocess import resolve_overlap, sliding_windows
from ..imagery import ImageWindows, SensorScaling, open_image
from ..imagery.inputs import image_sources
from .tasks import (TaskSpec, inference_pipeline, model_tasks, task_detector,
                    task_specs)

#: Box tensors by their last dimension: type, JSON box format.
BOX_TYPES = {
    4: (HorizontalBoxes, 'hbox', BOX_FORMATS['hbox']),
    5: (RotatedBoxes, 'rbox', BOX_FORMATS['rbox']),
}


class PatchJob(NamedTuple):
    """One image for the sliding-window mode (what ``preprocess`` yields)."""
    image: ImageWindows
    item: dict
    windows: np.ndarray  # (P, 4) x1, y1, x2, y2 in image pixels
    batch_size: int
    merge_iou_thr: Optional[float]


class SM3DetInferencer(DetInferencer):
    """Predict images of any task of an SM3Det (or plain) detector.

    Args:
        model: config path or config of the model.
        weights: checkpoint path; None predicts with random weights (a
            warning says so).
        task: default task for calls without one; may be omitted when the
            model has one task.
        device: e.g. 'cpu', 'cuda:0'; None picks the available one.
        strict: a checkpoint whose keys or shapes do not match the model
            is an error (listing them); False only warns (mmengine's
            behaviour).
        palette, show_progress: as in mmdet's ``DetInferencer``.

    Call it as ``DetInferencer`` (inputs: a path, an array, a folder, a
    glob pattern or a list of them; ``out_dir``, ``pred_score_thr``,
    ``return_datasample`` ...), plus ``task`` and the sliding-window options
    ``sliding_window``, ``patch_size``, ``patch_overlap``,
    ``merge_iou_thr``. Predictions are ``DetDataSample``s whose
    ``pred_instances.bboxes`` are ``HorizontalBoxes`` (HBB tasks) or
    ``RotatedBoxes`` (OBB tasks, le90) in the input image's pixels, and
    whose metainfo holds ``dataset_name`` and the task's ``classes``.
    """

    preprocess_kwargs = {
        'sliding_window', 'patch_size', 'patch_overlap', 'merge_iou_thr'
    }

    def __init__(self,
                 model: Union[str, mmengine.Config],
                 weights: Optional[str] = None,
                 task: Optional[str] = None,
                 device: Optional[str] = None,
                 strict: bool = True,
                 palette: str = 'none',
                 show_progress: bool = False) -> None:
        self.weights, self.strict = weights, strict
        super().__init__(
            model=model,
            weights=weights,
            device=device,
            scope='mmrotate',
            palette=palette,
            show_progress=show_progress)
        self.tasks = model_tasks(self.model, self.specs)
        self._task = None
        if task is not None or len(self.tasks) == 1:
            self.task = task

    # ------------------------------------------------------------ set-up
    def _load_weights_to_model(self, model: nn.Module,
                               checkpoint: Optional[dict], cfg) -> None:
        """Strict loading with the file named; class names come per task
        from the config (a multi-task checkpoint's meta has one set)."""
        if checkpoint is None:
            warnings.warn('no checkpoint: the model predicts with random '
                          'weights')
        else:
            try:
                state_dict = checkpoint.get('state_dict', checkpoint)
                # A DDP-wrapped model saved by hand prefixes 'module.'.
                load_state_dict(
                    model, {
                        k[len('module.'):] if k.startswith('module.') else k: v
                        for k, v in state_dict.items()
                    },
                    strict=self.strict)
            except RuntimeError as e:
                raise ValueError(
                    f'checkpoint {self.weights} does not match the model '
                    f'of the config ({e}); pass strict=False to load the '
                    'matching weights only') from None
        self.specs: Dict[str, TaskSpec] = task_specs(cfg)
        first = next(iter(self.specs.values()))  # until a task is chosen
        model.dataset_meta = dict(
            classes=first.classes, palette=first.palette or 'random')

    def _init_collate(self, cfg):
        """mmengine's ``pseudo_collate``, as the test loaders use (mmrotate
        has no FUNCTIONS registry for the stock look-up to search)."""
        return pseudo_collate

    def _init_pipeline(self, cfg) -> Dict[str, Compose]:
        """Per task: the pipeline for whole images (``LoadSensorImage``,
        paths and arrays, with the task loader's arguments), its scaling,
        and the pipeline for patches (mmrotate's ``LoadPatchFromNDArray``
        cuts a window of an :class:`ImageWindows`, already 8-bit)."""
        self.pipelines = {
            name: Compose(inference_pipeline(spec, 'LoadSensorImage'))
            for name, spec in self.specs.items()
        }
        self.scalings: Dict[str, SensorScaling] = {
            name:
            next(
                t.scaling for t in pipeline.transforms
                if isinstance(t, LoadSensorImage))
            for name, pipeline in self.pipelines.items()
        }
        self.patch_pipelines = {
            name:
            Compose(inference_pipeline(spec, 'mmrotate.LoadPatchFromNDArray'))
            for name, spec in self.specs.items()
        }
        return None  # set per task by the ``task`` setter

    @property
    def task(self) -> str:
        """The task predicted; setting it switches pipeline and classes."""
        if self._task is None:
            self.task = None  # raises: several tasks, none chosen
        return self._task

    @task.setter
    def task(self, task: Optional[str]) -> None:
        if task is None and len(self.tasks) == 1:
            task = self.tasks[0]
        if task is None:
            raise ValueError(
                f'the model has several tasks {self.tasks}; say which '
                'one to predict (task=... / --task)')
        if task not in self.tasks:
            raise ValueError(f'unknown task {task!r}; the model has the '
                             f'tasks {self.tasks}')
        self._task = task
        spec = self.specs[task]
        self.pipeline = self.pipelines[task]
        self.model.dataset_meta = dict(
            classes=spec.classes, palette=spec.palette or 'random')
        if self.visualizer is not None:
            self.visualizer.dataset_meta = self.model.dataset_meta

    @property
    def classes(self) -> tuple:
        """The class names of the current task."""
        return self.specs[self.task].classes

    # ------------------------------------------------------------ inputs
    def __call__(self, inputs, task: Optional[str] = None, **kwargs) -> dict:
        """``DetInferencer.__call__`` for ``task`` (default: the one set)."""
        if task is not None or self._task is None:
            self.task = task
        return super().__call__(inputs, **kwargs)

    def _inputs_to_list(self, inputs) -> List[dict]:
        """Paths, arrays, folders and glob patterns -> one dict per image
        (``img_path`` or ``img``, ``img_id``, ``dataset_name``)."""
        items = []
        for source in image_sources(inputs):
            items.append(self._input_item(source, len(items)))
        return items

    def _input_item(self, source: Union[str, np.ndarray], index: int) -> dict:
        """Check one image (exists, readable, channel count, a dtype the
        task's scaling takes) and describe it for the pipelines
        (``img_path`` or ``img``, ``img_id``, ``dataset_name``); nothing is
        decoded yet."""
        item = dict(dataset_name=self.task)
        if isinstance(source, np.ndarray):
            open_image(
                source,
                self._model_channels(),
                name=f'input {index} (array)',
                scaling=self.scaling)
            item.update(img_id=f'{index:08d}', img_path=None, img=source)
        elif isinstance(source, str):
            open_image(
                source,
                self._model_channels(),
                decode=False,
                scaling=self.scaling)
            item.update(
                img_id=osp.splitext(osp.basename(source))[0], img_path=source)
        else:
            raise TypeError('an input is an image path, a folder, a glob '
                            'pattern or a numpy array, got '
                            f'{type(source).__name__}')
        return item

    @staticmethod
    def _whole_image(item: dict) -> dict:
        """``item`` as the whole-image pipeline takes it: a ``.npy`` file
        is loaded here as an array (``LoadSensorImage`` converts arrays)."""
        path = item['img_path']
        if item.get('img') is None and path.lower().endswith('.npy'):
            return dict(item, img=np.load(path))
        return item

    @property
    def scaling(self) -> SensorScaling:
        """How the current task maps images that are not 8-bit to 0-255
        (its loader's ``scaling``)."""
        return self.scalings[self.task]

    def _model_channels(self) -> int:
        """Channels the data preprocessor normalises (3 when unknown)."""
        mean = getattr(self.model.data_preprocessor, 'mean', None)
        return 3 if mean is None else int(mean.numel())

    # ------------------------------------------------------------ running
    def preprocess(self,
                   inputs: List[dict],
                   batch_size: int = 1,
                   sliding_window: bool = False,
                   patch_size: Optional[int] = None,
                   patch_overlap: Optional[int] = None,
                   merge_iou_thr: Optional[float] = None):
        """Batches of whole images; with ``sliding_window`` one
        :class:`PatchJob` per image whose patches go in batches of
        ``batch_size``.

        Args:
            patch_size: square patch side in pixels; default the task's
                test scale (the Resize of its pipeline).
            patch_overlap: pixels shared by neighbouring patches; default
                a quarter of the patch size.
            merge_iou_thr: IoU of the class-wise NMS merging the patches;
                default the task head's own test NMS threshold.
        """
        if not sliding_window:
            yield from super().preprocess(
                map(self._whole_image, inputs), batch_size)
            return
        patch_size = patch_size or self.default_patch_size()
        overlap = resolve_overlap(patch_size, patch_overlap)
        for item in inputs:
            image = open_image(
                item.get('img', item['img_path']),
                self._model_channels(),
                scaling=self.scaling)
            windows = sliding_windows(image.width, image.height, patch_size,
                                      overlap)
            ori = item.get('img_path') or item['img']
            yield [ori], [
                PatchJob(image, item, windows, batch_size, merge_iou_thr)
            ]

    def default_patch_size(self) -> int:
        """The longer side of the task's test Resize scale."""
        for step in self.specs[self.task].pipeline:
            if step['type'].split('.')[-1] == 'Resize' and 'scale' in step:
                scale = step['scale']
                return int(
                    max(scale) if isinstance(scale, Sequence) else scale)
        raise ValueError(f'task {self.task!r}: no Resize scale in its test '
                         'pipeline; give patch_size')

    @torch.no_grad()
    def forward(self, inputs, **kwargs) -> List[DetDataSample]:
        """``model.test_step`` of a batch, or the merged patches of each
        :class:`PatchJob`; boxes become box types, classes are attached."""
        if isinstance(inputs, list):
            preds = [self._predict_by_patches(job) for job in inputs]
        else:
            preds = self.model.test_step(inputs)
        for pred in preds:
            bboxes = get_box_tensor(pred.pred_instances.bboxes)
            pred.pred_instances.bboxes = BOX_TYPES[bboxes.size(-1)][0](bboxes)
            pred.set_metainfo(dict(classes=self.classes))
        return preds

    def _predict_by_patches(self, job: PatchJob) -> DetDataSample:
        """Run the patches in batches, shift their boxes to the image and
        merge them class-wise with (rotated) NMS.

        mmrotate's ``inference_detector_by_patches`` does not fit: it
        decodes the whole image, takes the pipeline of a single test
        dataset and gives the samples no ``dataset_name``; its batching is
        kept, its ``merge_results_by_nms`` is used as it is, and its
        ``slide_window``'s layout comes from the runtime's
        :func:`~sm3det.deploy.preprocess.sliding_windows` (the same
        windows, and it takes overlap 0).
        """
        pipeline = self.patch_pipelines[self.task]
        meta = {
            k: v
            for k, v in job.item.items() if k in ('img_id', 'dataset_name')
        }
        patches = []
        for start in range(0, len(job.windows), job.batch_size):
            batch = [
                pipeline(dict(meta, img=job.image, patch=w.tolist()))
                for w in job.windows[start:start + job.batch_size]
            ]
            for sample in self.model.test_step(self.collate_fn(batch)):
                pred = sample.pred_instances
                pred.bboxes = get_box_tensor(pred.bboxes)
                patches.append(DetDataSample(pred_instances=pred))
        box_dim = patches[0].pred_instances.bboxes.size(-1)
        merged = merge_results_by_nms(
            patches, job.windows[:, :2], (job.image.width, job.image.height),
            self._merge_nms_cfg(box_dim, job.merge_iou_thr))
        shape = (job.image.height, job.image.width)
        merged.set_metainfo(
            dict(
                meta,
                img_path=job.item.get('img_path'),
                ori_shape=shape,
                img_shape=shape,
                num_patches=len(job.windows)))
        return merged

    def _merge_nms_cfg(self, box_dim: int, iou_thr: Optional[float]) -> dict:
        """NMS for merging: rotated for OBB boxes, at the head's test NMS
        threshold unless ``iou_thr`` is given."""
        if iou_thr is None:
            test_cfg = task_detector(self.model, self.task).test_cfg or {}
            nms = test_cfg.get('rcnn', test_cfg).get('nms', {})
            iou_thr = nms.get('iou_threshold', 0.1 if box_dim == 5 else 0.5)
        return dict(
            type='nms_rotated' if box_dim == 5 else 'nms',
            iou_threshold=iou_thr)

    # ------------------------------------------------------------ outputs
    def visualize(self,
                  inputs,
                  preds,
                  return_vis: bool = False,
                  show: bool = False,
                  wait_time: int = 0,
                  draw_pred: bool = True,
                  pred_score_thr: float = 0.3,
                  no_save_vis: bool = False,
                  img_out_dir: str = '',
                  **kwargs) -> Optional[List[np.ndarray]]:
        """Draw with the config's visualizer into ``img_out_dir/vis/``
        (inputs: paths or BGR arrays, read as the pipeline reads them; a
        large image is decoded whole)."""
        if no_save_vis:
            img_out_dir = ''
        if not show and not img_out_dir and not return_vis:
            return None
        if self.visualizer is None:
            raise ValueError('drawing needs a `visualizer` in the config')
        drawn = []
        for source, pred in zip(inputs, preds):
            img = open_image(source, scaling=self.scaling).read_all()
            img = img[..., ::-1]  # the visualizer draws RGB
            if isinstance(source, str) and not source.endswith('.npy'):
                name = osp.basename(source)
            else:
                name = f'{pred.img_id}.png'
            self.visualizer.add_datasample(
                name,
                img,
                pred,
                show=show,
                wait_time=wait_time,
                draw_gt=False,
                draw_pred=draw_pred,
                pred_score_thr=pred_score_thr,
                out_file=osp.join(img_out_dir, 'vis', name)
                if img_out_dir else None)
            drawn.append(self.visualizer.get_image())
        return drawn

    def pred2dict(self,
                  data_sample: DetDataSample,
                  pred_out_dir: str = '') -> dict:
        """JSON-ready predictions of one image, dumped to
        ``pred_out_dir/preds/<image>.json`` when a folder is given."""
        pred = data_sample.pred_instances
        boxes = pred.bboxes.tensor
        _, box_type, box_format = BOX_TYPES[boxes.size(-1)]
        labels = pred.labels.tolist()
        result = dict(
            img_id=data_sample.img_id,
            img_path=data_sample.get('img_path'),
            task=self.task,
            box_type=box_type,
            box_format=box_format,
            bboxes=boxes.tolist(),
            scores=pred.scores.tolist(),
            labels=labels,
            label_names=[self.classes[i] for i in labels])
        if pred_out_dir:
            mmengine.dump(
                result,
                osp.join(pred_out_dir, 'preds', f'{data_sample.img_id}.json'))
        return result
