"""Parameters and FLOPs of a model or config, as the paper counts them.

Parameters count every expert of every MoE layer; FLOPs count one forward
pass, in which each MoE expert only computes the tokens routed to it, so the
total holds the top-k active experts only (sum over experts = k x tokens x
per-token expert FLOPs). FLOPs are mmengine's (fvcore-style) counts from a
jit trace of the actual forward: one multiply-add is one FLOP, as mmcv and
fvcore report them; element-wise ops (GELU, additions, routing) are not
counted.

For the multi-task ``SM3Det`` the FLOPs are those of one forward pass per
dataset head (backbone + neck + that head), summed over the heads: the
paper's convention (e.g. 131G GFL + 136G + 136G Oriented R-CNN = 403G).
Two-stage heads are counted on a fixed number of RoIs
(:func:`fix_proposal_count`; the paper's numbers use 1000, the proposal
count of mmdet 2.x's ``forward_dummy``) instead of whatever an untrained RPN
happens to propose.
"""
from typing import Dict, Optional, Sequence

import torch
import torch.nn as nn
from mmengine.analysis import FlopAnalyzer, parameter_count
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmrotate.registry import MODELS

from ..models.detectors import resolve_stock_detectors


def count_params_and_flops(model: nn.Module, inputs: tuple) -> Dict:
    """Count parameters (all) and FLOPs of ``model(*inputs)`` (executed).

    Args:
        model: Any module; it is run once, under no_grad, in its current
            mode (use eval mode: no gating noise, no drop path).
        inputs: Positional arguments of ``model.forward``.

    Returns:
        dict with ``params`` and ``flops`` (totals) and ``params_by_module``,
        ``flops_by_module`` (name -> count; ``''`` is the whole model).
    """
    analyzer = FlopAnalyzer(model, inputs)
    analyzer.unsupported_ops_warnings(False)
    analyzer.uncalled_modules_warnings(False)
    analyzer.tracer_warnings('none')
    with torch.no_grad():
        flops_by_module = dict(analyzer.by_module())
    params_by_module = dict(parameter_count(model))
    return dict(
        params=params_by_module[''],
        flops=flops_by_module[''],
        params_by_module=params_by_module,
        flops_by_module=flops_by_module)


class DetectorTensorForward(nn.Module):
    """``detector._forward(images, data_samples)`` as a module for tracing:
    the raw network outputs, without post-processing."""

    def __init__(self, detector: nn.Module, data_samples: list):
        super().__init__()
        self.detector = detector
        self.data_samples = data_samples

    def forward(self, images: torch.Tensor):
        return self.detector._forward(images, self.data_samples)


def detector_data_samples(shape: Sequence[int],
                          batch: int = 1,
                          **extra_meta) -> list:
    """Data samples with the metainfo a detector's forward reads (plus
    ``extra_meta``, e.g. ``dataset_name``)."""
    from mmdet.structures import DetDataSample
    meta = dict(
        img_shape=tuple(shape),
        ori_shape=tuple(shape),
        pad_shape=tuple(shape),
        batch_input_shape=tuple(shape),
        scale_factor=(1., 1.),
        **extra_meta)
    return [DetDataSample(metainfo=meta) for _ in range(batch)]


def fix_proposal_count(model_cfg: Config, num_proposals: int) -> Config:
    """``model_cfg`` with every RPN keeping at most ``num_proposals`` at test
    time; ``StockDetector`` entries are resolved first, since their RPN
    settings live in the stock config."""
    model_cfg = resolve_stock_detectors(model_cfg)
    detectors = [task.detector for task in model_cfg.get('tasks', {}).values()]
    for detector in detectors or [model_cfg]:
        rpn_test_cfg = detector.get('test_cfg', {}).get('rpn')
        if rpn_test_cfg is not None:
            rpn_test_cfg.max_per_img = num_proposals
    return model_cfg


def build_for_counting(cfg: Config,
                       shape: Sequence[int],
                       backbone_only: bool = False,
                       task: str = None) -> tuple:
    """Model in eval mode wrapped for tracing, and its inputs.

    ``task``: for a multi-task detector, the dataset whose head runs.
    """
    model_cfg = cfg.model.backbone if backbone_only else cfg.model
    model = MODELS.build(model_cfg).eval()
    return wrap_for_counting(model, shape, task)


def wrap_for_counting(model: nn.Module,
                      shape: Sequence[int],
                      task: str = None) -> tuple:
    """A detector as a traceable module (with ``dataset_name=task`` in its
    samples), and its inputs; other modules as they are."""
    images = torch.rand(1, 3, *shape)
    if hasattr(model, 'extract_feat') and hasattr(model, '_forward'):
        extra = dict(dataset_name=task) if task else {}
        model = DetectorTensorForward(model,
                                      detector_data_samples(shape, **extra))
    return model, (images, )


def count_config(cfg: Config,
                 shape: Sequence[int],
                 backbone_only: bool = False) -> Dict:
    """Parameters and FLOPs of a config's model; for a multi-task detector
    the FLOPs are summed over one forward per task (``flops_by_task``)."""
    tasks = [] if backbone_only else list(cfg.model.get('tasks', {}))
    if not tasks:
        model, inputs = build_for_counting(cfg, shape, backbone_only)
        return dict(count_params_and_flops(model, inputs), model=model)
    detector = MODELS.build(cfg.model).eval()
    by_task = {}
    for task in tasks:
        model, inputs = wrap_for_counting(detector, shape, task)
        by_task[task] = count_params_and_flops(model, inputs)
    result = dict(by_task[tasks[0]], model=model)
    result['flops'] = sum(r['flops'] for r in by_task.values())
    result['flops_by_task'] = {t: r['flops'] for t, r in by_task.items()}
    return result


def measure_config(path: str,
                   shape: Sequence[int],
                   num_proposals: int = 1000,
                   params_only: bool = False) -> Dict[str, Optional[float]]:
    """Parameters and FLOPs (plain counts) of one config's model.

    Args:
        path: an MMEngine config file.
        shape: input ``(H, W)``.
        num_proposals: RoIs per image for two-stage heads.
        params_only: count the parameters of a model built on the meta
            device (no weights allocated); ``flops`` is then None.

    Returns:
        dict with ``params`` and ``flops``.
    """
    cfg = Config.fromfile(path)
    init_default_scope(cfg.get('default_scope', 'mmrotate'))
    if params_only:
        with torch.device('meta'):
            model = MODELS.build(cfg.model)
        return dict(
            params=sum(p.numel() for p in model.parameters()), flops=None)
    cfg.model = fix_proposal_count(cfg.model, num_proposals)
    result = count_config(cfg, shape)
    return dict(params=result['params'], flops=result['flops'])
