"""SOIDetMetric: one evaluation over SOI-Det's three test sets at once.

docs/method.md section 6: the HBB part (SAR) gets COCO box AP, the OBB parts
(DOTA, DroneVehicle) rotated-IoU VOC "area" AP, each at IoU 0.50:0.05:0.95,
classes without ground truth skipped; the overall row is the mean per-class
AP over the union of all datasets' classes, not the mean of the datasets, e.g.
(6 x 60.64 + 15 x 46.47 + 5 x 48.87) / 26 = 50.20 for SM3Det.

Each test sample says which dataset it belongs to (``dataset_name`` in its
metainfo); the metric never guesses it. Rotated detections are matched to
their ground truth in ``process`` (one IoU pass per image and class for all
thresholds), so the work is spread over the ranks and each collected result
holds only scores, labels and int8 outcomes.
"""
import os.path as osp
import time
from collections import OrderedDict
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np
import torch
from mmengine.evaluator import BaseMetric
from mmengine.logging import MMLogger
from mmrotate.registry import METRICS

from .coco_ap import coco_class_ap
from .dota_submission import (read_dota_ground_truth, read_dota_task1,
                              write_dota_submission, write_dota_task1)
from .rotated_ap import match_rotated_detections, rotated_class_ap
from .summary_tables import (display_names, format_class_table,
                             format_summary_table)

BOX_DIMS = dict(hbox=4, rbox=5)
# COCO's thresholds 0.50:0.05:0.95, the same floats pycocotools uses.
DEFAULT_IOU_THRS = tuple(np.linspace(0.5, 0.95, 10).tolist())
NAMED_THRS = dict(AP50=0.5, AP75=0.75)


def _as_numpy(values, dtype) -> np.ndarray:
    """A tensor, box-type object (``.tensor``) or array as a numpy array."""
    values = getattr(values, 'tensor', values)
    if isinstance(values, torch.Tensor):
        values = values.detach().cpu().numpy()
    return np.asarray(values, dtype=dtype)


def _as_boxes(boxes, box_dim: int, where: str) -> np.ndarray:
    """Boxes as a float32 (N, box_dim) array, with a clear error otherwise."""
    boxes = _as_numpy(boxes, np.float32)
    if boxes.size == 0:
        return boxes.reshape(0, box_dim)
    if boxes.ndim != 2 or boxes.shape[1] != box_dim:
        raise ValueError(
            f'{where} must have shape (N, {box_dim}) '
            f'({"x1,y1,x2,y2" if box_dim == 4 else "cx,cy,w,h,angle"}), '
            f'got {tuple(boxes.shape)}')
    return boxes


def _as_labels(labels, num_classes: int, where: str) -> np.ndarray:
    labels = _as_numpy(labels, np.int64).reshape(-1)
    outside = labels[(labels < 0) | (labels >= num_classes)]
    if outside.size:
        raise ValueError(f'{where} has class index {outside[0]}, outside '
                         f'0..{num_classes - 1}')
    return labels


def pool_class_aps(class_aps: Sequence[np.ndarray]) -> np.ndarray:
    """Per-threshold mean AP over the union of several datasets' classes.

    Args:
        class_aps: one (T, C_d) AP array per dataset, NaN for classes
            without ground truth (those are skipped).

    Returns:
        np.ndarray: (T,) the mean over every class with ground truth; zeros
        when no class has any.
    """
    aps = np.concatenate(class_aps, axis=1)
    evaluated = ~np.isnan(aps[0])
    if not evaluated.any():
        return np.zeros(aps.shape[0])
    return aps[:, evaluated].mean(axis=1)


@METRICS.register_module()
class SOIDetMetric(BaseMetric):
    """Per-dataset and overall mAP / AP50 / AP75 over mixed SOI-Det samples.

    Args:
        tasks: dataset name -> ``dict(box_type='hbox' | 'rbox',
            classes=[...])``. ``hbox`` datasets get COCO AP of x1,y1,x2,y2
            boxes, ``rbox`` ones rotated VOC "area" AP of cx,cy,w,h,angle
            (radians) boxes. Any number of datasets. Optionally
            ``display_name``: its column in the summary table.
        iou_thrs: IoU thresholds; default 0.50:0.05:0.95. ``mAP`` is the
            mean over them; ``AP50`` / ``AP75`` are reported when 0.5 / 0.75
            are among them.
        outfile_prefix: when set, the predictions of every ``rbox`` dataset
            are written in DOTA Task1 format to ``<outfile_prefix>/<name>/``
            (patch level, no merging).
        format_only: only write the predictions (needs ``outfile_prefix``);
            ground truth is not needed and nothing is evaluated.
        merge_patches: ``rbox`` tasks whose images are DOTA patches
            (``P0003__800__0___400``): their predictions are also merged
            back to full images (mmrotate's ``DOTAMetric`` merge, rotated
            NMS at ``merge_iou_thr``) and written as the DOTA test-server
            submission, ``<outfile_prefix>/<name>_submission/`` with
            ``Task1_<class>.txt`` per class and their zip (needs
            ``outfile_prefix``; the folder must not exist yet).
        merge_iou_thr: IoU threshold of that merge; default 0.1.
        full_image_ann_dirs: task -> folder of full-image DOTA txt ground
            truth, for tasks in ``merge_patches``: the merged submission is
            then scored too, as ``<name>_full_image/mAP`` ... (with
            ``format_only`` as well: patch ground truth is not needed).
        collect_device: 'cpu' or 'gpu', for collecting results across ranks.
        prefix: prefix of the metric names; default 'soi_det'.

    Returned metrics (fractions in [0, 1]): ``<name>/mAP``, ``<name>/AP50``,
    ``<name>/AP75`` per dataset and ``overall/...`` over all classes.
    """

    default_prefix: Optional[str] = 'soi_det'

    def __init__(self,
                 tasks: Mapping[str, Mapping],
                 iou_thrs: Optional[Sequence[float]] = None,
                 outfile_prefix: Optional[str] = None,
                 format_only: bool = False,
                 merge_patches: Sequence[str] = (),
                 merge_iou_thr: float = 0.1,
                 full_image_ann_dirs: Optional[Mapping[str, str]] = None,
                 collect_device: str = 'cpu',
                 prefix: Optional[str] = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        if not tasks:
            raise ValueError('SOIDetMetric needs at least one task')
        self.tasks: Dict[str, dict] = {}
        for name, spec in tasks.items():
            if spec.get('box_type') not in BOX_DIMS:
                raise ValueError(
                    f"task {name!r}: box_type must be 'hbox' or 'rbox', got "
                    f'{spec.get("box_type")!r}')
            if not spec.get('classes'):
                raise ValueError(f'task {name!r} has no classes')
            self.tasks[name] = dict(
                box_type=spec['box_type'], classes=tuple(spec['classes']))
        self.display_names = display_names(tasks)
        self.iou_thrs = tuple(
            float(t)
            for t in (DEFAULT_IOU_THRS if iou_thrs is None else iou_thrs))
        if not self.iou_thrs or not all(0 < t <= 1 for t in self.iou_thrs):
            raise ValueError(
                f'iou_thrs must be values in (0, 1], got {iou_thrs}')
        self.named_thrs = {
            name: int(np.flatnonzero(np.isclose(self.iou_thrs, thr))[0])
            for name, thr in NAMED_THRS.items()
            if np.isclose(self.iou_thrs, thr).any()
        }
        if format_only and outfile_prefix is None:
            raise ValueError('format_only=True needs outfile_prefix: the '
                             'predictions are written there')
        self.outfile_prefix = outfile_prefix
        self.format_only = format_only
        self._check_merging(merge_patches, full_image_ann_dirs or {})
        self.merge_patches = tuple(merge_patches)
        self.merge_iou_thr = merge_iou_thr
        self.full_image_ann_dirs = dict(full_image_ann_dirs or {})

    def _check_merging(self, merge_patches: Sequence[str],
                       ann_dirs: Mapping[str, str]) -> None:
        """Clear errors for the DOTA-submission options."""
        rbox_tasks = [
            name for name, task in self.tasks.items()
            if task['box_type'] == 'rbox'
        ]
        for name in merge_patches:
            if name not in rbox_tasks:
                raise ValueError(f'merge_patches: {name!r} is not one of '
                                 f'the rbox tasks {rbox_tasks}')
            out_dir = self._submission_dir(name)
            if out_dir is None:
                raise ValueError('merge_patches needs outfile_prefix: the '
                                 'DOTA submission is written there')
            if osp.exists(out_dir):
                raise ValueError(f'merge_patches: {out_dir} exists; remove '
                                 'it or choose another outfile_prefix')
        for name, ann_dir in ann_dirs.items():
            if name not in merge_patches:
                raise ValueError(f'full_image_ann_dirs: {name!r} is not in '
                                 f'merge_patches {list(merge_patches)}')
            if not osp.isdir(ann_dir):
                raise ValueError(f'full_image_ann_dirs[{name!r}]: folder '
                                 f'{ann_dir} does not exist')

    def _submission_dir(self, name: str) -> Optional[str]:
        return (None if self.outfile_prefix is None else osp.join(
            self.outfile_prefix, f'{name}_submission'))

    def process(self, data_batch, data_samples: Sequence[dict]) -> None:
        """Keep a small numpy summary of each sample's predictions and GT.

        Args:
            data_batch: unused.
            data_samples: ``DetDataSample.to_dict()`` outputs with
                ``dataset_name``, ``img_id``, ``pred_instances`` (bboxes,
                scores, labels) and, unless ``format_only``, ``gt_instances``
                and optionally ``ignored_instances`` (bboxes, labels) in the
                same image frame as the predictions.
        """
        for sample in data_samples:
            name = sample.get('dataset_name')
            if name not in self.tasks:
                raise KeyError(
                    f'SOIDetMetric got a sample with dataset_name={name!r}; '
                    f'the configured tasks are {list(self.tasks)}')
            self.results.append(self._summarise_sample(name, sample))

    def _summarise_sample(self, name: str, sample: dict) -> dict:
        """numpy arrays only: rotated tasks keep int8 match outcomes (T, N)
        instead of boxes, horizontal ones the boxes pycocotools needs."""
        task = self.tasks[name]
        box_dim = BOX_DIMS[task['box_type']]
        num_classes = len(task['classes'])
        where = f'{name} sample {sample["img_id"]!r}'
        pred = sample['pred_instances']
        result = dict(
            task=name,
            img_id=sample['img_id'],
            scores=_as_numpy(pred['scores'], np.float32).reshape(-1),
            labels=_as_labels(pred['labels'], num_classes,
                              f'{where}: pred_instances.labels'))
        bboxes = _as_boxes(pred['bboxes'], box_dim,
                           f'{where}: pred_instances.bboxes')
        if task['box_type'] == 'hbox' or self.outfile_prefix is not None:
            result['bboxes'] = bboxes
        if self.format_only:
            return result

        gt_bboxes, gt_labels = self._instances(sample, 'gt_instances', box_dim,
                                               num_classes, where)
        ignored_bboxes, ignored_labels = self._instances(
            sample, 'ignored_instances', box_dim, num_classes, where)
        result['gt_labels'] = gt_labels
        if task['box_type'] == 'hbox':
            result.update(
                gt_bboxes=gt_bboxes,
                ignored_bboxes=ignored_bboxes,
                ignored_labels=ignored_labels)
        else:
            result['outcomes'] = match_rotated_detections(
                bboxes, result['scores'], result['labels'], gt_bboxes,
                gt_labels, ignored_bboxes, ignored_labels, self.iou_thrs)
        return result

    @staticmethod
    def _instances(sample: dict, key: str, box_dim: int, num_classes: int,
                   where: str) -> Tuple[np.ndarray, np.ndarray]:
        """(bboxes, labels) of ``sample[key]``; empty when it is absent."""
        instances = sample.get(key) or {}
        if 'bboxes' not in instances:
            return (np.zeros((0, box_dim), np.float32), np.zeros(0, np.int64))
        return (_as_boxes(instances['bboxes'], box_dim,
                          f'{where}: {key}.bboxes'),
                _as_labels(instances['labels'], num_classes,
                           f'{where}: {key}.labels'))

    def compute_metrics(self, results: List[dict]) -> Dict[str, float]:
        """Evaluate every dataset, then pool all classes into ``overall``.

        Args:
            results: the ``process`` outputs of all ranks.

        Returns:
            dict: ``overall/mAP``, ``overall/AP50``, ``overall/AP75`` and the
            same per dataset, fractions in [0, 1]; empty with
            ``format_only``.
        """
        logger = MMLogger.get_current_instance()
        by_task: Dict[str, List[dict]] = {name: [] for name in self.tasks}
        for result in results:
            by_task[result['task']].append(result)
        if self.outfile_prefix is not None:
            self._write_predictions(by_task, logger)
        full_image = self._full_image_metrics(by_task, logger)
        if self.format_only:
            return full_image

        class_aps, task_metrics = [], OrderedDict()
        for name, samples in by_task.items():
            if not samples:
                logger.warning(f'SOI-Det: no test sample of {name!r}; it is '
                               'left out of the overall row')
                continue
            start = time.perf_counter()
            ap, num_gts, num_dets = self._class_ap(name, samples)
            mean_ap = pool_class_aps([ap])
            logger.info(
                f'SOI-Det: evaluated {name} ({len(samples)} images, '
                f'{num_dets.sum()} detections, {num_gts.sum()} objects) in '
                f'{time.perf_counter() - start:.1f} s; mAP per IoU thr: ' +
                ', '.join(f'{thr:.2f}: {100 * value:.2f}'
                          for thr, value in zip(self.iou_thrs, mean_ap)))
            if not num_gts.any():
                logger.warning(f'SOI-Det: {name} has no ground truth; its '
                               'APs are reported as 0')
            logger.info(
                '\n' +
                format_class_table(name, self.tasks[name]['classes'], ap,
                                   num_gts, num_dets, self.named_thrs))
            class_aps.append(ap)
            task_metrics.update(self._headline(name, mean_ap))
        if not class_aps:
            return {}
        metrics = self._headline('overall', pool_class_aps(class_aps))
        metrics.update(task_metrics)
        logger.info('\n' + format_summary_table(metrics, self.display_names))
        metrics.update(full_image)
        return metrics

    def _class_ap(
            self, name: str,
            samples: List[dict]) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(T, C) AP, (C,) GT counts and (C,) detection counts of a dataset."""
        num_classes = len(self.tasks[name]['classes'])
        if self.tasks[name]['box_type'] == 'hbox':
            return coco_class_ap(samples, num_classes, self.iou_thrs)
        return rotated_class_ap(
            np.concatenate([s['outcomes'] for s in samples], axis=1),
            np.concatenate([s['scores'] for s in samples]),
            np.concatenate([s['labels'] for s in samples]),
            np.concatenate([s['gt_labels'] for s in samples]), num_classes)

    def _headline(self, name: str, mean_ap: np.ndarray) -> Dict[str, float]:
        """``<name>/mAP`` and the named-threshold APs from (T,) mean APs."""
        metrics = {f'{name}/mAP': float(mean_ap.mean())}
        for key, t in self.named_thrs.items():
            metrics[f'{name}/{key}'] = float(mean_ap[t])
        return metrics

    def _write_predictions(self, by_task: Dict[str, List[dict]],
                           logger: MMLogger) -> None:
        """DOTA Task1 files of every ``rbox`` dataset under the prefix."""
        for name, samples in by_task.items():
            if self.tasks[name]['box_type'] != 'rbox':
                continue
            out_dir = osp.join(self.outfile_prefix, name)
            write_dota_task1(out_dir, samples, self.tasks[name]['classes'])
            logger.info(f'SOI-Det: {name} predictions of {len(samples)} '
                        f'images written in DOTA Task1 format to {out_dir}')
            if name in self.merge_patches:
                zip_path = write_dota_submission(
                    self._submission_dir(name), samples,
                    self.tasks[name]['classes'], self.merge_iou_thr)
                logger.info(f'SOI-Det: {name} patches merged to full '
                            f'images; DOTA Task1 submission: {zip_path}')

    def _full_image_metrics(self, by_task: Dict[str, List[dict]],
                            logger: MMLogger) -> Dict[str, float]:
        """``<name>_full_image/mAP`` ... of the merged submission files
        against the full-image ground truth of ``full_image_ann_dirs``."""
        metrics = {}
        for name, ann_dir in self.full_image_ann_dirs.items():
            classes = self.tasks[name]['classes']
            truth = read_dota_ground_truth(ann_dir, classes)
            preds = read_dota_task1(self._submission_dir(name), classes)
            unknown = sorted(set(preds) - set(truth))
            if unknown:
                raise ValueError(f'{ann_dir} has no ground truth for the '
                                 f'merged images {unknown[:5]}')
            empty = dict(
                bboxes=np.zeros((0, 5), np.float32),
                scores=np.zeros(0, np.float32),
                labels=np.zeros(0, np.int64))
            outcomes, scores, labels = [], [], []
            for image, gt in truth.items():
                pred = preds.get(image, empty)
                outcomes.append(
                    match_rotated_detections(pred['bboxes'], pred['scores'],
                                             pred['labels'], gt['bboxes'],
                                             gt['labels'], empty['bboxes'],
                                             empty['labels'], self.iou_thrs))
                scores.append(pred['scores'])
                labels.append(pred['labels'])
            ap, num_gts, num_dets = rotated_class_ap(
                np.concatenate(outcomes, axis=1), np.concatenate(scores),
                np.concatenate(labels),
                np.concatenate([gt['labels'] for gt in truth.values()]),
                len(classes))
            logger.info(
                '\n' + format_class_table(f'{name} (full images)', classes, ap,
                                          num_gts, num_dets, self.named_thrs))
            metrics.update(
                self._headline(f'{name}_full_image', pool_class_aps([ap])))
        return metrics
