"""Say in the run's log which kernels ``mmcv.ops`` runs."""
from mmengine.hooks import Hook
from mmrotate.registry import HOOKS

import sm3det_compat

_BACKENDS = {
    'compiled':
    "mmcv's compiled ops",
    'pytorch':
    'the PyTorch kernels of sm3det_compat.ops (no compiled mmcv '
    'ops installed, or SM3DET_OPS=pytorch)',
}


@HOOKS.register_module()
class KernelBackendHook(Hook):
    """Logs, once at the start of a run, whether mmcv's kernels are the
    compiled ones or the PyTorch ones: results and speed can differ
    slightly between the two, so a log should say which produced them."""

    priority = 'VERY_LOW'

    def before_run(self, runner) -> None:
        runner.logger.info(
            f'mmcv kernels: {_BACKENDS[sm3det_compat.ops_backend()]}')
