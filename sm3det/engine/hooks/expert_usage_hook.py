"""ExpertUsageHook: per-dataset expert usage of the MoE backbone, measured
in validation and test epochs (counting and distances:
:mod:`sm3det.evaluation.expert_usage`)."""
from typing import List, Optional, Sequence

from mmengine.dist import all_gather_object
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper
from mmrotate.registry import HOOKS

from ...evaluation.expert_usage import ExpertUsage, image_expert_maps
from ...models.layers import GridMoE, moe_layers


@HOOKS.register_module()
class ExpertUsageHook(Hook):
    """Per-dataset expert usage of the MoE backbone, measured in validation
    and test epochs.

    During the epoch every MoE layer records its expert map; after each
    iteration the maps of every image (cropped to the image) are counted under
    its ``dataset_name``. After the epoch, with the counts of all processes
    gathered, the Jensen-Shannon distance of every two datasets per stage is
    published as ``{val,test}/expert_usage/<stage>/<a>-<b>`` (message hub, so
    LoggerHook logs it, and the epoch's metrics), and the per-layer shares are
    logged. ``tools/analysis_tools/expert_usage.py`` gives tables and plots.

    Priority NORMAL: after RuntimeInfoHook has copied the metrics to the
    message hub, before LoggerHook (BELOW_NORMAL) writes them out.
    """

    priority = 'NORMAL'

    def __init__(self):
        self._usage: Optional[ExpertUsage] = None
        self._layers: List[GridMoE] = []

    def _start(self, runner) -> None:
        model = runner.model.module if is_model_wrapper(
            runner.model) else runner.model
        layers = moe_layers(getattr(model, 'backbone', model))
        if not layers:
            raise ValueError('ExpertUsageHook: the model has no GridMoE '
                             'layer (a dense backbone?); remove the hook')
        experts = {layer.num_experts for layer in layers.values()}
        if len(experts) != 1:
            raise ValueError(f'ExpertUsageHook: MoE layers differ in '
                             f'num_experts {experts}')
        self._layers = list(layers.values())
        self._usage = ExpertUsage(list(layers), experts.pop())
        for layer in self._layers:
            layer.record_routing(expert_counts=False, expert_map=True)

    def _count(self, outputs: Sequence) -> None:
        for index, sample in enumerate(outputs):
            self._usage.add(
                sample.metainfo['dataset_name'],
                image_expert_maps(self._layers, index, sample.metainfo))

    def _finish(self, runner, mode: str, metrics: Optional[dict]) -> None:
        for layer in self._layers:
            layer.record_routing(expert_counts=False, expert_map=False)
        usage, self._usage, self._layers = self._usage, None, []
        gathered = all_gather_object(usage)  # [usage] outside distributed
        usage = gathered[0]
        for other in gathered[1:]:
            usage.merge(other)
        if not usage.counts:
            return
        for stage, distances in usage.stage_distances().items():
            for (a, b), distance in distances.items():
                key = f'expert_usage/{stage}/{a}-{b}'
                runner.message_hub.update_scalar(f'{mode}/{key}', distance)
                if metrics is not None:
                    metrics[key] = distance
        shares = usage.layer_shares()
        lines = [f'Expert usage ({mode}), % of routing slots per expert:']
        for name in usage.datasets:
            for label, row in zip(usage.layer_labels, shares[name]):
                lines.append(f'  {name:>14s} {label:>14s}: ' +
                             ' '.join(f'{100 * s:5.1f}' for s in row))
        print_log('\n'.join(lines), logger='current')

    def before_val_epoch(self, runner) -> None:
        self._start(runner)

    def after_val_iter(self,
                       runner,
                       batch_idx: int,
                       data_batch=None,
                       outputs: Optional[Sequence] = None) -> None:
        self._count(outputs)

    def after_val_epoch(self, runner, metrics: Optional[dict] = None) -> None:
        self._finish(runner, 'val', metrics)

    def before_test_epoch(self, runner) -> None:
        self._start(runner)

    def after_test_iter(self,
                        runner,
                        batch_idx: int,
                        data_batch=None,
                        outputs: Optional[Sequence] = None) -> None:
        self._count(outputs)

    def after_test_epoch(self, runner, metrics: Optional[dict] = None) -> None:
        self._finish(runner, 'test', metrics)
