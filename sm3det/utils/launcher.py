"""Run set-up shared by ``tools/train.py`` and ``tools/test.py``.

mmengine's ``pytorch`` launcher assumes CUDA: it calls
``torch.cuda.set_device`` and wraps the model in DDP with
``device_ids=[LOCAL_RANK]``, both of which fail on a CPU-only machine. Here
the process group is initialised with gloo instead and the model is wrapped
by a DDP that keeps its parameters on the CPU, so ``tools/dist_train.sh
CONFIG 2`` also runs (slowly, but in step) without a GPU.
"""
import os.path as osp
from typing import Optional

import torch
import torch.distributed as dist
from mmengine.config import Config
from mmengine.model import MMDistributedDataParallel
from mmrotate.registry import MODEL_WRAPPERS

from .cpu_memory import reuse_large_cpu_blocks


@MODEL_WRAPPERS.register_module()
class CPUDistributedDataParallel(MMDistributedDataParallel):
    """``MMDistributedDataParallel`` for models that live on the CPU.

    DDP refuses ``device_ids`` for CPU modules; mmengine always passes them.
    """

    def __init__(self, module, device_ids=None, **kwargs):
        super().__init__(module=module, device_ids=None, **kwargs)


def setup_launcher(cfg, launcher: str) -> None:
    """Set ``cfg.launcher`` and, without CUDA, make it work on gloo.

    Args:
        cfg (Config): the run's config, modified in place.
        launcher (str): 'none', 'pytorch', 'slurm' or 'mpi'.
    """
    cfg.launcher = launcher
    if launcher == 'none' or torch.cuda.is_available():
        return
    if launcher != 'pytorch':
        raise RuntimeError(
            f"launcher '{launcher}' needs GPUs; without CUDA use "
            "tools/dist_train.sh (torchrun, gloo backend)")
    env_cfg = cfg.setdefault('env_cfg', {})
    env_cfg.setdefault('dist_cfg', {})['backend'] = 'gloo'
    if not dist.is_initialized():
        # Runner skips its own (CUDA-only) init when a group already exists.
        dist.init_process_group(backend='gloo')
    # Scoped: the Runner looks wrappers up in mmengine's root registry.
    cfg.model_wrapper_cfg = dict(
        type='mmrotate.CPUDistributedDataParallel',
        # mmengine reads this top-level key only without a wrapper config.
        find_unused_parameters=cfg.get('find_unused_parameters', False))


def load_run_config(config: str, cfg_options: Optional[dict], launcher: str,
                    work_dir: Optional[str]) -> Config:
    """The config of a run: file + ``--cfg-options`` + launcher + work dir.
    Without CUDA it also lets glibc reuse large freed blocks
    (:func:`~sm3det.utils.cpu_memory.reuse_large_cpu_blocks`).

    The work dir is, in order: ``work_dir``, the config's own ``work_dir``,
    ``./work_dirs/<config file name>``.
    """
    cfg = Config.fromfile(config)
    if cfg_options is not None:
        cfg.merge_from_dict(cfg_options)
    setup_launcher(cfg, launcher)
    if not torch.cuda.is_available():
        reuse_large_cpu_blocks()
    if work_dir is not None:
        cfg.work_dir = work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs',
                                osp.splitext(osp.basename(config))[0])
    return cfg


def close_distributed() -> None:
    """Destroy the default process group, if any, at the end of a run.

    Left to interpreter exit, gloo's worker threads can outlive the process
    group and abort a rank ("terminate called without an active
    exception"), which torchrun then reports as a failed run.
    """
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()
