"""Which tasks a model predicts, and each task's classes and test pipeline.

A task is one test dataset of the config (``test_dataloader.dataset``, or
each part of a ``ConcatDataset``), named by its ``dataset_name`` (``sar``,
``dota``, ``dronevehicle``). An ``SM3Det`` predicts the tasks it has heads
for (``model.task_names``); a plain mmdet / mmrotate detector (the
single-dataset configs) predicts its one test dataset.
"""
import copy
import inspect
from typing import Dict, List, NamedTuple, Optional

from mmcv.transforms import LoadAnnotations, LoadImageFromFile
from mmdet.datasets.transforms import PackDetInputs
from mmengine.config import ConfigDict
from mmrotate.datasets.transforms import ConvertBoxType
from mmrotate.registry import DATASETS, TRANSFORMS
from torch import nn

#: Transforms that only prepare ground truth: left out at inference.
GT_TRANSFORMS = (LoadAnnotations, ConvertBoxType)
PACK_DEFAULT_META_KEYS = inspect.signature(
    PackDetInputs).parameters['meta_keys'].default


class TaskSpec(NamedTuple):
    """One task: its name, class names, palette and test pipeline config."""
    name: str
    classes: tuple
    palette: Optional[list]
    pipeline: list


def dataset_cfgs(cfg, split: str = 'test') -> List[ConfigDict]:
    """The dataset configs of ``<split>_dataloader``: the parts of a
    ConcatDataset, or the one."""
    dataset = cfg[f'{split}_dataloader'].dataset
    return list(dataset.datasets) if 'datasets' in dataset else [dataset]


def dataset_task_name(dataset_cfg: ConfigDict) -> str:
    """The task (``dataset_name``) of a dataset config."""
    return _task_name(_lazy_dataset(dataset_cfg))


def _lazy_dataset(dataset_cfg: ConfigDict):
    """The dataset built with ``lazy_init=True``: its metainfo only, no
    annotation or image file is read."""
    return DATASETS.build(dict(copy.deepcopy(dataset_cfg), lazy_init=True))


def _task_name(dataset) -> str:
    return dataset.metainfo.get('dataset_name') or type(
        dataset).__name__.lower()


def task_specs(cfg) -> Dict[str, TaskSpec]:
    """One :class:`TaskSpec` per test dataset of ``cfg``, by task name.

    Only the datasets' metainfo is read, no annotation or image file.
    """
    specs = {}
    for dataset_cfg in dataset_cfgs(cfg):
        dataset = _lazy_dataset(dataset_cfg)
        meta = dataset.metainfo
        name = _task_name(dataset)
        specs[name] = TaskSpec(name, tuple(meta['classes']),
                               meta.get('palette'),
                               copy.deepcopy(dataset_cfg.pipeline))
    return specs


def model_tasks(model: nn.Module, specs: Dict[str, TaskSpec]) -> List[str]:
    """The tasks ``model`` predicts: an SM3Det's heads, each of which must
    have a test dataset in the config, or all of the config's tasks."""
    if not hasattr(model, 'heads'):
        return list(specs)
    missing = [name for name in model.task_names if name not in specs]
    if missing:
        raise ValueError(
            f'the model has heads {list(model.task_names)}, but the '
            f"config's test datasets are {list(specs)}: no test pipeline "
            f'for {missing}')
    return list(model.task_names)


def task_detector(model: nn.Module, task: str) -> nn.Module:
    """The detector that predicts ``task``: SM3Det's head, or the model."""
    return model.heads[task] if hasattr(model, 'heads') else model


def inference_pipeline(spec: TaskSpec, loader: str) -> list:
    """``spec``'s test pipeline for images without annotations.

    Ground-truth transforms are left out, the image loader (any subclass of
    mmcv's ``LoadImageFromFile``) becomes ``loader`` with the same
    arguments, and ``dataset_name`` is packed into every sample's metainfo
    (SM3Det picks the head by it).
    """
    pipeline, has_loader = [], False
    for step in copy.deepcopy(spec.pipeline):
        transform = TRANSFORMS.get(step['type'])
        if transform is None:
            raise ValueError(f'task {spec.name!r}: unknown transform '
                             f'{step["type"]!r} in its test pipeline')
        if issubclass(transform, GT_TRANSFORMS):
            continue
        if issubclass(transform, LoadImageFromFile):
            step['type'], has_loader = loader, True
        if issubclass(transform, PackDetInputs):
            meta_keys = tuple(step.get('meta_keys', PACK_DEFAULT_META_KEYS))
            if 'dataset_name' not in meta_keys:
                step['meta_keys'] = meta_keys + ('dataset_name', )
        pipeline.append(step)
    if not has_loader:
        raise ValueError(f'task {spec.name!r}: its test pipeline has no '
                         'image loader (a LoadImageFromFile)')
    return pipeline
