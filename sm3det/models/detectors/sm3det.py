"""SM3Det: one backbone and neck, one task head per dataset.

The whole batch goes through the shared backbone (dense or MoE) and FPN
together; the pyramid is then split by each sample's ``dataset_name`` tag and
every slice is handed to the head of its dataset (docs/method.md section 3).

A task head is any mmdet / mmrotate detector without its backbone and neck:
GFL or RetinaNet for horizontal boxes, Oriented R-CNN, RoI Transformer or
S2ANet for oriented ones. Each is built from its usual detector config
(``mmdet.GFL``, ``mmdet.FasterRCNN`` ..., or a stock config with changes:
:mod:`.stock_detector`) whose backbone is replaced by :class:`PyramidLevels`,
which hands over the FPN levels that head reads. So each head keeps its own
assigners, samplers, train/test cfg and post-processing, exactly as in the
single-dataset detector.
"""
import copy
from typing import Dict, List, Sequence, Tuple

import torch
from mmdet.models.detectors.base import BaseDetector
from mmdet.models.utils import samplelist_boxtype2tensor
from mmdet.structures import SampleList
from mmengine.model import BaseModule, ModuleDict
from mmrotate.registry import MODELS
from torch import Tensor

from ..layers import moe_balance_loss, prune_experts
from .task_sub_modules import SubModule, head_sub_modules


class PyramidLevels(BaseModule):
    """The 'backbone' of a task head: picks levels of the shared pyramid.

    Args:
        levels (Sequence[int]): indices into the neck's outputs, e.g.
            ``(1, 2, 3, 4, 5)`` for P3-P7 when the neck gives P2-P7.
    """

    def __init__(self, levels: Sequence[int]):
        super().__init__()
        self.levels = tuple(levels)

    def forward(self, feats: Tuple[Tensor]) -> Tuple[Tensor]:
        return tuple(feats[i] for i in self.levels)


@MODELS.register_module()
class SM3Det(BaseDetector):
    """Multi-dataset, multi-box-type detector with a shared backbone.

    Args:
        backbone (dict): shared backbone config (e.g. ``ConvNeXtMoE``).
        neck (dict): shared neck config; its outputs are the pyramid that
            every task head reads (e.g. an FPN giving P2-P7).
        tasks (dict[str, dict]): one entry per dataset, keyed by the
            ``dataset_name`` its samples carry. Each entry has
            ``detector`` (an mmdet/mmrotate detector config without backbone
            and neck, e.g. a ``StockDetector``), ``feat_levels`` (the
            pyramid levels its head reads), optionally ``boxtype2tensor``
            (True for heads that want plain tensor boxes, such as mmdet's
            GFL; mmrotate heads keep box types) and optionally
            ``sub_modules`` (the head's parts for DSO and loss weighting;
            see :mod:`.task_sub_modules`).
        data_preprocessor (dict): shared data preprocessor config.
        kept_experts (dict, optional): ``{GridMoE layer name in the backbone:
            [expert indices]}``: those layers keep only these experts, in
            this order (a per-sensor export,
            ``tools/model_converters/export_task.py``, whose checkpoint holds
            the kept experts only); routing among them is unchanged. None:
            every expert.
        loss_weighting (dict, optional): a module applied to the loss dict
            (after the balance loss is added), e.g.
            ``dict(type='UncertaintyLossWeighting')`` for the
            uncertainty-weighting baseline; it is built with
            ``sub_modules=self.sub_modules``. None: losses as they are.
        init_cfg (dict, optional): initialisation config.

    Attributes:
        heads (ModuleDict): task name -> task head.
        sub_modules (dict[str, SubModule]): every task head's sub-modules
            (parameter prefix and loss key patterns), e.g. ``'sar'``,
            ``'dota.rpn_head'``, ``'dota.roi_head'``.
    """

    TASK_KEYS = ('detector', 'feat_levels', 'boxtype2tensor', 'sub_modules')

    def __init__(self,
                 backbone: dict,
                 neck: dict,
                 tasks: Dict[str, dict],
                 data_preprocessor: dict = None,
                 kept_experts: Dict[str, Sequence[int]] = None,
                 loss_weighting: dict = None,
                 init_cfg: dict = None):
        super().__init__(
            data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        if not tasks:
            raise ValueError('SM3Det needs at least one entry in `tasks`')
        self.backbone = MODELS.build(backbone)
        if kept_experts:
            prune_experts(self.backbone, kept_experts)
        self.neck = MODELS.build(neck)
        # mmengine's ModuleDict, so that init_weights reaches every head.
        self.heads = ModuleDict()
        self.boxtype2tensor = {}
        self.sub_modules: Dict[str, SubModule] = {}
        # By name: Config.dump sorts dict keys, and the parameter order (the
        # optimizer state's layout) must survive resuming from the dump.
        for name, task in sorted(tasks.items()):
            unknown = set(task) - set(self.TASK_KEYS)
            if 'detector' not in task or 'feat_levels' not in task or unknown:
                raise ValueError(
                    f"tasks['{name}'] needs `detector` and `feat_levels` "
                    '(and optionally `boxtype2tensor`, `sub_modules`); got '
                    f'{sorted(task)}')
            if not name or '.' in name or '/' in name:
                raise ValueError(
                    f'task name {name!r}: loss keys (<task>.<loss>) and '
                    'metric keys (<task>/mAP) need a non-empty name without '
                    "'.' and '/'")
            detector = copy.deepcopy(task['detector'])
            detector.update(
                backbone=dict(type=PyramidLevels, levels=task['feat_levels']),
                neck=None)
            self.heads[name] = MODELS.build(detector)
            self.boxtype2tensor[name] = task.get('boxtype2tensor', False)
            self.sub_modules.update(
                head_sub_modules(name, self.heads[name],
                                 task.get('sub_modules')))
        self.loss_weighting = MODELS.build(
            loss_weighting, default_args=dict(
                sub_modules=self.sub_modules)) if loss_weighting else None

    @property
    def task_names(self) -> List[str]:
        return list(self.heads.keys())

    def extract_feat(self, batch_inputs: Tensor) -> Tuple[Tensor]:
        """(N, 3, H, W) images -> the shared pyramid: (N, C, h, w) maps."""
        return self.neck(self.backbone(batch_inputs))

    def split_by_task(self,
                      batch_data_samples: SampleList) -> Dict[str, List[int]]:
        """Map each task to the batch indices of its samples (batch order)."""
        groups = {}
        for i, sample in enumerate(batch_data_samples):
            name = sample.metainfo.get('dataset_name')
            if name not in self.heads:
                raise KeyError(
                    f"sample {sample.metainfo.get('img_path', i)} has "
                    f"dataset_name={name!r}, but the model's tasks are "
                    f'{self.task_names}; add `dataset_name` to the '
                    'PackDetInputs meta_keys and check the dataset config')
            groups.setdefault(name, []).append(i)
        return groups

    def _run_heads(self, method: str, batch_inputs: Tensor,
                   batch_data_samples: SampleList,
                   **kwargs) -> Dict[str, Tuple[List[int], object]]:
        """One backbone + neck pass, then ``head.<method>`` per task.

        Each task's head gets the rows of the pyramid and the samples of its
        own images (in batch order).

        Returns:
            dict: task name -> (its batch indices, what its head returned),
            for the tasks present in the batch.
        """
        groups = self.split_by_task(batch_data_samples)
        feats = self.extract_feat(batch_inputs)
        outputs = {}
        for name, indices in groups.items():
            if len(indices) == len(batch_data_samples):
                task_feats = feats
            else:
                index = torch.as_tensor(indices, device=feats[0].device)
                task_feats = tuple(f.index_select(0, index) for f in feats)
            samples = [batch_data_samples[i] for i in indices]
            if self.boxtype2tensor[name]:
                # In place, as mmdet's data preprocessor does it.
                samplelist_boxtype2tensor(samples)
            head = getattr(self.heads[name], method)
            outputs[name] = (indices, head(task_feats, samples, **kwargs))
        return outputs

    def loss(self, batch_inputs: Tensor,
             batch_data_samples: SampleList) -> Dict[str, Tensor]:
        """Losses of every task present in the batch, keys prefixed with the
        task name (``sar.loss_cls``), plus ``loss_moe_balance`` when the
        backbone has MoE layers. A task absent from the batch adds nothing.
        With ``loss_weighting`` the dict is passed through that module."""
        losses = {}
        for name, (_,
                   task_losses) in self._run_heads('loss', batch_inputs,
                                                   batch_data_samples).items():
            losses.update({f'{name}.{k}': v for k, v in task_losses.items()})
        balance_loss = moe_balance_loss(self.backbone)
        if balance_loss is not None:
            losses['loss_moe_balance'] = balance_loss
        if self.loss_weighting is not None:
            losses = self.loss_weighting(losses)
        return losses

    def predict(self,
                batch_inputs: Tensor,
                batch_data_samples: SampleList,
                rescale: bool = True) -> SampleList:
        """Each image is predicted by the head of its dataset; results
        (``pred_instances`` with HBB or OBB ``bboxes``, ``scores``,
        ``labels`` in that dataset's class indices) land in the samples."""
        for indices, predicted in self._run_heads(
                'predict', batch_inputs, batch_data_samples,
                rescale=rescale).values():
            for i, sample in zip(indices, predicted):
                batch_data_samples[i].pred_instances = sample.pred_instances
        return batch_data_samples

    def _forward(self,
                 batch_inputs: Tensor,
                 batch_data_samples: SampleList = None) -> Dict[str, tuple]:
        """Raw head outputs per task (used by FLOPs counting)."""
        return {
            name: outs
            for name, (_, outs) in self._run_heads('_forward', batch_inputs,
                                                   batch_data_samples).items()
        }
