"""Per-sensor export: one task's head and only the experts its images use.

A deployment on one sensor (a SAR satellite, an infrared drone) needs one
head of SM3Det and, in each GridMoE layer of the backbone, only the experts
that sensor's tokens are routed to (the paper's expert-usage maps show SAR
using a subset of its own). :func:`export_task`:

1. routes a calibration set (evenly spaced images of the task's validation or
   test set) through the backbone and counts, per MoE layer, the share of
   routing slots each expert receives (the expert maps of
   :func:`~sm3det.evaluation.expert_usage.route_images`, cropped to the
   image);
2. keeps the experts whose share is above a threshold (default 0: every
   expert chosen at least once), and at least ``top_k`` per layer;
3. writes a single-task config: ``model.tasks`` holds the task alone,
   ``model.kept_experts`` the kept experts per layer (``SM3Det`` prunes its
   backbone when it is built), the validation / test loaders and evaluators
   the task's part alone, and no training parts (their loader mixes every
   task);
4. and the checkpoint of that model (state dict, ``meta.dataset_meta``, and
   ``meta.export``: what was kept and measured), checked by a strict load.

Routing among the kept experts is unchanged
(:func:`~sm3det.models.layers.keep_experts`): an image whose tokens choose
only kept experts gets exactly the full model's predictions; with a
threshold above 0, a token whose choice was dropped goes to its best kept
experts instead.
"""
import copy
from typing import Dict, List, NamedTuple, Sequence

import numpy as np
import torch
from mmengine.config import Config, ConfigDict
from mmengine.runner import load_checkpoint
from mmengine.utils import ProgressBar
from mmrotate.registry import MODELS
from torch import nn

from ..datasets import build_subset_loader
from ..evaluation.expert_usage import route_images
from ..models.layers import moe_layers, prune_experts
from .tasks import dataset_cfgs, dataset_task_name, task_specs

#: Config keys of training, dropped from an export.
TRAINING_KEYS = ('train_dataloader', 'train_cfg', 'optim_wrapper',
                 'param_scheduler', 'auto_scale_lr')


class TaskExport(NamedTuple):
    """What :func:`export_task` produced.

    Attributes:
        config: the single-task config.
        checkpoint: ``dict(meta=..., state_dict=...)`` of its model.
        expert_shares: MoE layer name in the backbone -> ``(N,)`` share of
            the task's routing slots per expert (sums to 1).
        kept_experts: layer -> kept expert indices, for the layers that
            lose experts.
        params_before, params_after: parameter counts of the full model and
            of the export.
    """
    config: Config
    checkpoint: dict
    expert_shares: Dict[str, np.ndarray]
    kept_experts: Dict[str, List[int]]
    params_before: int
    params_after: int


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def task_dataset_cfg(cfg: Config, task: str, split: str) -> ConfigDict:
    """The dataset config of ``task`` in ``<split>_dataloader``.

    Raises:
        ValueError: the loader has no dataset of that task (lists them).
    """
    parts = {
        dataset_task_name(part): part
        for part in dataset_cfgs(cfg, split)
    }
    if task not in parts:
        raise ValueError(f"task {task!r}: the config's {split}_dataloader "
                         f'has the tasks {list(parts)}')
    return parts[task]


def measure_expert_shares(model: nn.Module,
                          dataset_cfg: ConfigDict,
                          num_images: int,
                          batch_size: int = 1) -> Dict[str, np.ndarray]:
    """Share of routing slots per expert of every GridMoE layer of
    ``model.backbone`` over ``num_images`` evenly spaced images of the
    dataset (positions over the image only, not batch padding).

    Returns:
        layer name -> ``(N,)`` float64 shares, summing to 1.
    """
    layers = moe_layers(model.backbone)
    loader = build_subset_loader(
        dict(dataset=dataset_cfg), num_images, batch_size, num_workers=0)
    counts = {
        name: torch.zeros(layer.num_experts, dtype=torch.long)
        for name, layer in layers.items()
    }
    progress = ProgressBar(len(loader.dataset))
    for _, _, maps in route_images(model, loader):
        for (name, layer), expert_map in zip(layers.items(), maps):
            counts[name] += torch.bincount(
                expert_map.flatten().cpu(), minlength=layer.num_experts)
        progress.update()
    return {
        name: (count / count.sum()).double().numpy()
        for name, count in counts.items()
    }


def choose_kept_experts(shares: Dict[str, np.ndarray],
                        top_k: Dict[str, int],
                        threshold: float = 0.) -> Dict[str, List[int]]:
    """The experts each layer keeps: those whose share is above
    ``threshold``, in index order; where fewer than the layer's ``top_k``
    pass, the most used others are added (a token needs k experts).

    Returns:
        layer -> kept expert indices, only for layers that drop experts.
    """
    kept = {}
    for name, share in shares.items():
        chosen = [e for e, s in enumerate(share) if s > threshold]
        by_use = sorted(range(len(share)), key=lambda e: (-share[e], e))
        for expert in by_use:
            if len(chosen) >= top_k[name]:
                break
            if expert not in chosen:
                chosen.append(expert)
        if len(chosen) < len(share):
            kept[name] = sorted(chosen)
    return kept


def export_config(cfg: Config, task: str,
                  kept_experts: Dict[str, Sequence[int]]) -> Config:
    """A copy of ``cfg`` for ``task`` alone (see the module docstring).

    Raises:
        ValueError: the model is no SM3Det with a head for ``task``.
    """
    cfg = copy.deepcopy(cfg)
    tasks = cfg.model.get('tasks')
    if not tasks or task not in tasks:
        raise ValueError(f'task {task!r}: the model config has the tasks '
                         f'{list(tasks or [])}; export needs an SM3Det model '
                         'with a head for it')
    cfg.model.tasks = {task: tasks[task]}
    cfg.model.kept_experts = {
        k: list(v)
        for k, v in kept_experts.items()
    } or None
    # Its weights come from the exported checkpoint; the loss weighting
    # (uncertainty baseline) only weighs training losses.
    cfg.model.backbone.init_cfg = None
    cfg.model.loss_weighting = None
    for split in ('val', 'test'):
        if cfg.get(f'{split}_dataloader'):
            cfg[f'{split}_dataloader'].dataset = task_dataset_cfg(
                cfg, task, split)
        evaluator = cfg.get(f'{split}_evaluator')
        if isinstance(evaluator, dict) and 'tasks' in evaluator:
            evaluator.tasks = {task: evaluator.tasks[task]}
    for key in TRAINING_KEYS:
        cfg[key] = None
    cfg.load_from, cfg.resume = None, False
    return cfg


def export_task(cfg: Config,
                checkpoint: str,
                task: str,
                split: str = 'val',
                num_images: int = 50,
                threshold: float = 0.,
                batch_size: int = 1) -> TaskExport:
    """Export ``task`` of a trained SM3Det (see the module docstring).

    Args:
        cfg: the model's config.
        checkpoint: its checkpoint file (loaded strictly).
        task: the task (``dataset_name``) to keep.
        split: ``'val'`` or ``'test'``: whose loader gives the calibration
            images.
        num_images: calibration images (evenly spaced; all if fewer).
        threshold: an expert is kept when its share of the task's routing
            slots in a layer is above this (0: chosen at least once).
        batch_size: calibration batch size.
    """
    if not 0 <= threshold < 1:
        raise ValueError(f'threshold {threshold}: a share, 0 <= t < 1')
    export_config(cfg, task, {})  # a bad task fails here, before routing
    model = MODELS.build(cfg.model)
    load_checkpoint(
        model, checkpoint, map_location='cpu', strict=True, logger='current')
    params_before = count_parameters(model)

    layers = moe_layers(model.backbone)
    shares = measure_expert_shares(model, task_dataset_cfg(cfg, task, split),
                                   num_images, batch_size) if layers else {}
    kept = choose_kept_experts(shares, {
        name: layer.top_k
        for name, layer in layers.items()
    }, threshold)
    exported_cfg = export_config(cfg, task, kept)

    prune_experts(model.backbone, kept)
    exported = MODELS.build(exported_cfg.model)
    wanted = exported.state_dict()
    # The other heads' keys are dropped; the strict load checks that every
    # kept tensor has its place and shape.
    exported.load_state_dict(
        {
            k: v
            for k, v in model.state_dict().items() if k in wanted
        },
        strict=True)

    spec = task_specs(exported_cfg)[task]
    meta = dict(
        dataset_meta=dict(classes=spec.classes, dataset_name=task),
        export=dict(
            task=task,
            source=checkpoint,
            split=split,
            num_images=num_images,
            threshold=threshold,
            kept_experts=kept,
            expert_shares={
                k: v.tolist()
                for k, v in shares.items()
            }))
    if spec.palette is not None:
        meta['dataset_meta']['palette'] = spec.palette
    return TaskExport(exported_cfg,
                      dict(meta=meta, state_dict=exported.state_dict()),
                      shares, kept, params_before, count_parameters(exported))
