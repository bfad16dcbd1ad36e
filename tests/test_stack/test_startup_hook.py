"""The stack's fixes are in force in every interpreter of this environment,
whatever runs first: MMRotate's own scripts, a session that imports
mmrotate before sm3det, a bare ``torch.load`` (``sm3det_compat``, applied at
start by the ``sm3det_compat.pth`` that installing the project adds)."""
import json
import os.path as osp
import subprocess
import sys

import mmrotate

from mini_training import CONFIG, mini_cfg

STOCK_TOOLS = osp.join(osp.dirname(mmrotate.__file__), '.mim', 'tools')


def run_python(*args, cwd=None):
    """A fresh interpreter of this environment (not started from the
    checkout, so nothing is imported from it by accident)."""
    return subprocess.run([sys.executable, *args],
                          cwd=cwd or osp.expanduser('~'),
                          capture_output=True,
                          text=True)


def test_the_startup_hook_is_installed_and_uninstallable():
    # pip uninstall removes exactly the files the installed RECORD lists
    proc = run_python(
        '-c', 'import importlib.metadata as m; '
        'print([str(f) for f in m.files("sm3det")])')
    assert 'sm3det_compat.pth' in proc.stdout, proc.stdout + proc.stderr


def test_interpreter_start_applies_the_fixes_and_imports_nothing_heavy():
    proc = run_python(
        '-c', 'import sys, json, collections; print(json.dumps(['
        '"sm3det_compat" in sys.modules, hasattr(collections, "Sequence"), '
        '[m for m in ("torch", "numpy", "mmcv", "mmengine", "mmrotate", '
        '"sm3det") if m in sys.modules]]))')
    assert proc.returncode == 0, proc.stderr
    hook_ran, sequence_fixed, heavy = json.loads(proc.stdout)
    assert hook_ran and sequence_fixed
    assert heavy == []


def test_importing_mmrotate_models_before_sm3det_works():
    proc = run_python(
        '-c', 'import sys, mmrotate.models, mmcv.ops; '
        'assert "sm3det" not in sys.modules; '
        'import sm3det; from mmrotate.registry import MODELS; '
        'assert MODELS.get("SM3Det") is not None; '
        'print(mmcv.ops.nms.__module__)')
    assert proc.returncode == 0, proc.stderr[-2000:]


def test_torch_load_reads_an_mmengine_checkpoint_without_sm3det(tmp_path):
    # a checkpoint with a message hub (HistoryBuffer, numpy scalars)
    from resumable_training import make_runner
    runner, _, _ = make_runner(str(tmp_path), max_iters=3, interval=3)
    runner.train()
    checkpoint = osp.join(str(tmp_path), 'iter_3.pth')
    proc = run_python(
        '-c', 'import sys, torch; '
        f'ckpt = torch.load({checkpoint!r}); '
        'assert "sm3det" not in sys.modules; '
        'print(sorted(ckpt["message_hub"]))')
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert 'log_scalars' in proc.stdout


def test_interpreters_started_by_torchrun_have_the_fixes(tmp_path):
    """torchrun's workers are fresh interpreters too. (mmengine's own
    ``--launcher pytorch`` set-up needs CUDA, so the stock scripts cannot be
    run distributed on this CPU; tools/dist_train.sh can.)"""
    script = tmp_path / 'worker.py'
    script.write_text('import sys, mmrotate.models, mmcv.ops\n'
                      'assert "sm3det" not in sys.modules\n'
                      'print("worker ok")\n')
    proc = run_python('-m', 'torch.distributed.run', '--nproc_per_node=2',
                      '--master_port=29533', str(script))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.count('worker ok') == 2


def test_mmrotate_own_train_and_test_scripts_run_the_mini_config(
        trained_mini, tmp_path):
    """The stock scripts of the installed mmrotate train the mini config for
    2 iterations and test the checkpoint, on the mini data."""
    cfg = mini_cfg(trained_mini.data_root, str(tmp_path / 'work'))
    cfg.train_cfg.max_iters = 2
    cfg.val_cfg = cfg.val_dataloader = cfg.val_evaluator = None
    cfg.default_hooks.checkpoint.interval = 2
    config = str(tmp_path / osp.basename(CONFIG))
    cfg.dump(config)
    train = run_python(osp.join(STOCK_TOOLS, 'train.py'), config)
    assert train.returncode == 0, train.stderr[-3000:]
    assert 'mmcv kernels:' in train.stdout + train.stderr
    checkpoint = str(tmp_path / 'work' / 'iter_2.pth')
    assert osp.isfile(checkpoint)
    test = run_python(osp.join(STOCK_TOOLS, 'test.py'), config, checkpoint)
    assert test.returncode == 0, test.stderr[-3000:]
    log = test.stdout + test.stderr
    assert 'SOI-Det' in log and 'soi_det/overall/mAP' in log
