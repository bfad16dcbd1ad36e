"""Expert usage: which experts of an MoE backbone each dataset's tokens use.

:class:`ExpertUsage` accumulates routing-slot counts per dataset, MoE layer
and expert (a token sends one slot to each of its top-k experts) and turns
them into shares and into Jensen-Shannon distances between the datasets'
expert distributions (0: same experts in the same proportions, 1: disjoint
sets); :func:`route_images` runs a model's backbone over a loader (e.g. of
:func:`~sm3det.datasets.build_subset_loader`) and yields each image's expert
maps, :func:`image_expert_maps` reads them from the layers after a forward.
The paper reads such statistics as "SAR uses a distinct set of experts, RGB
and infrared share more".

Used by :class:`~sm3det.engine.hooks.ExpertUsageHook` (during validation /
testing), the tool ``tools/analysis_tools/expert_usage.py`` (tables, heat
maps, expert maps) and :mod:`sm3det.apis.task_export` (which experts a
sensor's images use).

Layers are labelled by their module name in the backbone (``moe_layers``),
e.g. ``stages.2.4.mlp`` (ConvNeXtMoE, 0-based stages) or
``block1.0.mlp.fc1``; any backbone with GridMoE layers works alike.
"""
import itertools
import math
from collections import OrderedDict
from typing import Dict, Iterator, List, Sequence, Tuple

import numpy as np
import torch

from ..models.layers import GridMoE, moe_layers, record_moe_routing


def stage_of(layer_label: str) -> str:
    """The group (stage) of a layer: its module name before its last
    all-digit component, the block index.

    >>> stage_of('stages.2.4.mlp'), stage_of('block1.0.mlp.fc1')
    ('stages.2', 'block1')

    A name without such a component is its own stage.
    """
    parts = layer_label.split('.')
    digits = [i for i, part in enumerate(parts) if part.isdigit()]
    if not digits or digits[-1] == 0:
        return layer_label
    return '.'.join(parts[:digits[-1]])


def layer_in_stage(layer_label: str) -> str:
    """The rest of the label after its stage: ``'stages.2.4.mlp'`` ->
    ``'4.mlp'``; the whole label when it is its own stage."""
    stage = stage_of(layer_label)
    if stage == layer_label:
        return layer_label
    return layer_label[len(stage) + 1:]


def valid_token_extent(img_shape: Sequence[int],
                       batch_input_shape: Sequence[int],
                       feat_shape: Sequence[int]) -> Tuple[int, int]:
    """Rows and columns of a feature map that cover the image.

    Args:
        img_shape: ``(h, w)`` of the image inside the padded batch, pixels.
        batch_input_shape: ``(H, W)`` of the padded batch, pixels.
        feat_shape: ``(h_f, w_f)`` of the feature map, positions.

    Returns:
        ``(rows, cols)``: positions whose receptive-field origin lies in the
        image (a partly covered last row/column counts).
    """
    return tuple(
        max(1, min(feat, math.ceil(image * feat / padded))) for image, padded,
        feat in zip(img_shape[:2], batch_input_shape[:2], feat_shape[:2]))


def js_distance(p: np.ndarray, q: np.ndarray) -> float:
    """Jensen-Shannon distance (square root of the divergence, log base 2)
    between two distributions over the same experts; in [0, 1]."""
    p, q = p / p.sum(), q / q.sum()
    mean = (p + q) / 2

    def kl(a, b):
        nonzero = a > 0
        return float(np.sum(a[nonzero] * np.log2(a[nonzero] / b[nonzero])))

    return math.sqrt(max(0., (kl(p, mean) + kl(q, mean)) / 2))


class ExpertUsage:
    """Routing-slot counts per dataset, MoE layer and expert.

    Args:
        layer_labels: The MoE layers, in forward order (see
            :func:`moe_layers`).
        num_experts: ``N``, the same for every layer.

    Attributes:
        counts (dict[str, np.ndarray]): dataset -> ``(L, N)`` int64, slots
            (token x chosen expert) each expert of each layer received.
        num_images (dict[str, int]): dataset -> images added.
    """

    def __init__(self, layer_labels: Sequence[str], num_experts: int):
        self.layer_labels = list(layer_labels)
        self.num_experts = num_experts
        self.counts: Dict[str, np.ndarray] = {}
        self.num_images: Dict[str, int] = {}

    @property
    def datasets(self) -> List[str]:
        return list(self.counts)

    @property
    def stages(self) -> 'OrderedDict[str, List[int]]':
        """stage -> indices of its layers in ``layer_labels``."""
        stages = OrderedDict()
        for index, label in enumerate(self.layer_labels):
            stages.setdefault(stage_of(label), []).append(index)
        return stages

    def add(self, dataset: str, expert_maps: Sequence[torch.Tensor]) -> None:
        """Count one image's routing.

        Args:
            dataset: The image's ``dataset_name``.
            expert_maps: One ``(h, w, k)`` tensor of expert indices per
                layer, holding only the positions to count.
        """
        if len(expert_maps) != len(self.layer_labels):
            raise ValueError(f'expected one expert map per MoE layer '
                             f'({len(self.layer_labels)}), got '
                             f'{len(expert_maps)}')
        image_counts = np.stack([
            torch.bincount(m.flatten().cpu(),
                           minlength=self.num_experts).numpy()
            for m in expert_maps
        ])
        if dataset not in self.counts:
            self.counts[dataset] = np.zeros_like(image_counts)
            self.num_images[dataset] = 0
        self.counts[dataset] += image_counts
        self.num_images[dataset] += 1

    def layer_shares(self) -> Dict[str, np.ndarray]:
        """dataset -> ``(L, N)`` share of each layer's slots per expert
        (rows sum to 1)."""
        return {
            name: counts / counts.sum(axis=1, keepdims=True)
            for name, counts in self.counts.items()
        }

    def stage_shares(self) -> Dict[str, Dict[str, np.ndarray]]:
        """dataset -> stage -> ``(N,)`` mean over the stage's layers of the
        per-layer shares. The experts of different blocks are different
        modules: this row says how evenly expert *index* n is used, the
        layer rows say which experts are used."""
        shares = self.layer_shares()
        return {
            name:
            OrderedDict((stage, share[rows].mean(axis=0))
                        for stage, rows in self.stages.items())
            for name, share in shares.items()
        }

    def stage_distances(self) -> Dict[str, Dict[Tuple[str, str], float]]:
        """stage -> (dataset a, dataset b) -> Jensen-Shannon distance of
        their expert distributions, averaged over the stage's layers."""
        distances = OrderedDict()
        for stage, rows in self.stages.items():
            distances[stage] = OrderedDict(
                ((a, b),
                 float(
                     np.mean([
                         js_distance(self.counts[a][r], self.counts[b][r])
                         for r in rows
                     ]))) for a, b in itertools.combinations(self.datasets, 2))
        return distances

    def merge(self, other: 'ExpertUsage') -> None:
        """Add the counts of another accumulator over the same layers
        (e.g. another process's)."""
        if other.layer_labels != self.layer_labels:
            raise ValueError('cannot merge expert usage of different layers')
        for name, counts in other.counts.items():
            if name not in self.counts:
                self.counts[name] = np.zeros_like(counts)
                self.num_images[name] = 0
            self.counts[name] += counts
            self.num_images[name] += other.num_images[name]


def image_expert_maps(layers: Sequence[GridMoE], index: int,
                      metainfo: dict) -> List[torch.Tensor]:
    """The expert maps the layers recorded for image ``index`` of their last
    batch, each ``(h, w, k)``, cropped to the positions over the image
    (``metainfo`` needs ``img_shape`` and ``batch_input_shape``)."""
    maps = []
    for layer in layers:
        if layer.last_expert_map is None:
            raise RuntimeError('no expert map recorded: call record_routing('
                               'expert_map=True) before the forward')
        layer_map = layer.last_expert_map[index]
        rows, cols = valid_token_extent(metainfo['img_shape'],
                                        metainfo['batch_input_shape'],
                                        layer_map.shape)
        maps.append(layer_map[:rows, :cols])
    return maps


def route_images(
    model: torch.nn.Module, data_loader: Iterator
) -> Iterator[Tuple[dict, np.ndarray, List[torch.Tensor]]]:
    """Run the model's backbone in eval mode and yield each image's routing.

    Yields:
        ``(metainfo, image, expert_maps)``: the sample's metainfo; the input
        image as ``(h, w, 3)`` uint8 RGB, cropped to ``img_shape``; one
        ``(h_l, w_l, k)`` int64 tensor of expert indices (best first) per MoE
        layer, cropped to the positions that cover the image.
    """
    layers = list(moe_layers(model.backbone).values())
    model.eval()
    record_moe_routing(model.backbone, expert_counts=False, expert_map=True)
    try:
        for data in data_loader:
            raw_images = data['inputs']
            with torch.no_grad():
                data = model.data_preprocessor(data, False)
                model.backbone(data['inputs'])
            for i, sample in enumerate(data['data_samples']):
                meta = sample.metainfo
                height, width = meta['img_shape'][:2]
                # mmcv loads BGR; the channel flip gives RGB to draw.
                image = raw_images[i][[2, 1, 0], :height, :width]
                maps = image_expert_maps(layers, i, meta)
                yield meta, image.permute(1, 2, 0).numpy(), maps
    finally:
        record_moe_routing(
            model.backbone, expert_counts=False, expert_map=False)
