"""mAP of any predictor on one task's test set, with the config's metric
(SOI-Det's per-part AP): the same number for the PyTorch model and for its
ONNX export run by :mod:`sm3det.deploy`."""
from typing import Callable, Dict

import numpy as np
from mmengine.config import Config
from mmengine.utils import ProgressBar
from mmrotate.registry import DATASETS, METRICS

from ..apis.task_export import task_dataset_cfg

#: ``predict(image path) -> detections`` with ``boxes``, ``scores`` and
#: ``labels`` arrays in the image's pixels.
Predictor = Callable[[str], object]


def evaluate_task(predict: Predictor, cfg: Config,
                  task: str) -> Dict[str, float]:
    """Run ``predict`` on every image of ``task``'s test set and score the
    detections with the config's test evaluator, restricted to the task.

    Returns:
        The evaluator's metrics (e.g. ``soi_det/dota/mAP``).
    """
    dataset = DATASETS.build(task_dataset_cfg(cfg, task, 'test'))
    evaluator = dict(cfg.test_evaluator)
    if 'tasks' in evaluator:  # SOIDetMetric: this task alone
        evaluator['tasks'] = {task: evaluator['tasks'][task]}
    metric = METRICS.build(evaluator)
    metric.dataset_meta = dataset.metainfo
    progress = ProgressBar(len(dataset))
    for index in range(len(dataset)):
        sample = dataset[index]['data_samples']
        detections = predict(sample.img_path)
        result = dict(
            dataset_name=task,
            img_id=sample.img_id,
            pred_instances=dict(
                bboxes=np.asarray(detections.boxes),
                scores=np.asarray(detections.scores),
                labels=np.asarray(detections.labels)))
        for key in ('gt_instances', 'ignored_instances'):
            if key in sample:
                result[key] = _as_arrays(sample.get(key))
        metric.process({}, [result])
        progress.update()
    return metric.evaluate(len(dataset))


def _as_arrays(instances) -> dict:
    """``bboxes`` and ``labels`` of an InstanceData as numpy arrays."""
    boxes = instances.bboxes
    boxes = boxes.tensor if hasattr(boxes, 'tensor') else boxes
    return dict(bboxes=boxes.numpy(), labels=instances.labels.numpy())
