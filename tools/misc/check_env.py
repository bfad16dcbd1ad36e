"""Check that the SM3Det stack is installed and consistent.

Exits 0 when torch, mmengine 0.10.x, mmcv 2.0.1 (compiled, or mmcv-lite with
the PyTorch kernels of ``sm3det_compat``), mmdet 3.1.0, mmrotate 1.0.0rc1,
onnx 1.23.2, onnxruntime 1.32.0 and the test requirements import, the startup
hook that applies the stack's fixes ran in this interpreter, and ``sm3det`` is
installed from the given checkout.
Otherwise prints what is missing and exits 1.
"""
import sys

# Before any import below: was sm3det_compat imported by its .pth at start?
STARTUP_HOOK_RAN = 'sm3det_compat' in sys.modules

import argparse  # noqa: E402
import importlib  # noqa: E402
import os  # noqa: E402
import os.path as osp  # noqa: E402
import warnings  # noqa: E402

EXPECTED = {
    'mmengine': lambda v: v.startswith('0.10.'),
    'mmcv': lambda v: v == '2.0.1',
    'mmdet': lambda v: v == '3.1.0',
    'mmrotate': lambda v: v == '1.0.0rc1',
    # requirements/deploy.txt: the ONNX export and runtime
    'onnx': lambda v: v == '1.23.2',
    'onnxruntime': lambda v: v == '1.32.0',
}


def check(root, compiled_ops=False):
    """Return a list of human-readable problems (empty when all is well)."""
    problems = []
    if not STARTUP_HOOK_RAN:
        problems.append(
            'the sm3det_compat.pth startup hook did not run (pip install -e . '
            'installs it into site-packages): MMRotate\'s own tools/train.py '
            'and tools/test.py fail without it')
    try:
        import torch  # noqa: F401
    except ImportError as e:
        return problems + [f'torch does not import: {e}']
    for name, ok in EXPECTED.items():
        try:
            mod = importlib.import_module(name)
        except Exception as e:  # noqa: BLE001 - report any import failure
            problems.append(f'{name} does not import: {e}')
            continue
        if not ok(mod.__version__):
            problems.append(
                f'{name} {mod.__version__} is not the supported version')
    import sm3det_compat
    if compiled_ops and sm3det_compat.ops_backend() != 'compiled':
        problems.append('mmcv was installed without its compiled ops '
                        '(bash tools/install.sh --compiled-ops builds them)')
    # mmengine's configs that inherit mmrotate:: files need pkg_resources.
    for name in ('pkg_resources', 'pycocotools', 'shapely', 'pytest', 'flake8',
                 'isort', 'yapf'):
        try:
            with warnings.catch_warnings():  # pkg_resources: deprecated
                warnings.simplefilter('ignore')
                importlib.import_module(name)
        except ImportError as e:
            problems.append(f'{name} does not import: {e}')
    try:
        import sm3det
        where = osp.realpath(osp.dirname(osp.dirname(sm3det.__file__)))
        if root and where != osp.realpath(root):
            problems.append(f'sm3det is installed from {where}, not {root}')
    except Exception as e:  # noqa: BLE001
        problems.append(f'sm3det does not import: {e}')
    return problems


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        '--root',
        default=None,
        help='checkout that sm3det must be installed from')
    parser.add_argument(
        '--compiled-ops',
        action='store_true',
        help="require mmcv's compiled ops (not the PyTorch kernels)")
    parser.add_argument('--quiet', action='store_true')
    args = parser.parse_args()
    # Importing from the checkout itself would hide a missing editable install.
    root = osp.realpath(args.root or '')
    sys.path = [p for p in sys.path if osp.realpath(p or os.getcwd()) != root]
    problems = check(args.root, args.compiled_ops)
    if not args.quiet:
        for p in problems:
            print(f'[check_env] {p}')
        if not problems:
            import mmcv
            import mmdet
            import mmengine
            import mmrotate
            import onnxruntime
            import torch

            import sm3det_compat
            ops = {
                'compiled': 'compiled mmcv ops',
                'pytorch': 'PyTorch kernels of sm3det_compat.ops'
            }[sm3det_compat.ops_backend()]
            print(f'[check_env] OK: torch {torch.__version__}, mmengine '
                  f'{mmengine.__version__}, mmcv {mmcv.__version__}, '
                  f'mmdet {mmdet.__version__}, '
                  f'mmrotate {mmrotate.__version__}, onnxruntime '
                  f'{onnxruntime.__version__}; kernels: {ops}; '
                  'startup hook: sm3det_compat.pth')
    sys.exit(1 if problems else 0)


if __name__ == '__main__':
    main()
