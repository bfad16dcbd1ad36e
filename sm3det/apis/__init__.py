"""Inference: any task of a trained model, on images of any size.

``SM3DetInferencer`` (mmdet's ``DetInferencer`` with a task, and a
sliding-window mode that reads large images a window at a time with
``sm3det.imagery.open_image``) and the task discovery it builds on;
``export_task`` (one task's head and the experts it uses, for a
single-sensor deployment).
"""
from .inferencer import SM3DetInferencer
from .task_export import TaskExport, export_task
from .tasks import (TaskSpec, dataset_cfgs, dataset_task_name,
                    inference_pipeline, model_tasks, task_detector, task_specs)

__all__ = [
    'SM3DetInferencer', 'TaskSpec', 'task_specs', 'model_tasks',
    'task_detector', 'inference_pipeline', 'dataset_cfgs', 'dataset_task_name',
    'export_task', 'TaskExport'
]
