"""Inference: any task of a trained model, on images of any size.

``SM3DetInferencer`` (mmdet's ``DetInferencer`` with a task, and a
sliding-window mode), ``open_image`` / ``ImageWindows`` (window reading of
large images) and the task discovery it builds on; ``export_task``
(one task's head and the experts it uses, for a single-sensor deployment).
"""
from .inferencer import SM3DetInferencer
from .large_image import ImageWindows, check_image_shape, open_image
from .task_export import TaskExport, export_task
from .tasks import (TaskSpec, dataset_cfgs, dataset_task_name,
                    inference_pipeline, model_tasks, task_detector, task_specs)

__all__ = [
    'SM3DetInferencer', 'ImageWindows', 'open_image', 'check_image_shape',
    'TaskSpec', 'task_specs', 'model_tasks', 'task_detector',
    'inference_pipeline', 'dataset_cfgs', 'dataset_task_name', 'export_task',
    'TaskExport'
]
