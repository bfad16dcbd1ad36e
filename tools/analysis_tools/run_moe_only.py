"""Run a script with only SM3Det's MoE modules importable, without mmcv's
compiled ops: for a GPU machine that has torch but no mmcv build.

    python tools/analysis_tools/run_moe_only.py SCRIPT [SCRIPT's args]

``import sm3det`` imports the whole plugin (detectors, datasets, metrics),
and through mmrotate those need mmcv's compiled CUDA / C++ ops, a 10-30
minute build per torch version. The MoE layer (``sm3det.models.layers``) and
the ConvNeXt MoE backbone (``sm3det.models.backbones.convnext_moe``) need
only mmengine, ``mmcv.cnn`` and ``mmrotate.registry``, which pure-Python
wheels provide (mmengine, mmcv-lite, mmdet, mmrotate and their small
dependencies). This runner makes ``sm3det``, ``sm3det.models`` and
``sm3det.models.backbones`` plain namespaces whose ``__init__`` does not run,
then runs SCRIPT as ``__main__``. What SCRIPT imports from them must be named
by module (``from sm3det.models.backbones.convnext_moe import ConvNeXtMoE``),
as ``tools/analysis_tools/benchmark_moe.py`` does.

On a device machine (wheels carried in ``.whl``, see the README's MoE speed
section)::

    pip install --no-index --no-deps --target /tmp/site .whl/*.whl
    PYTHONPATH=/tmp/site:. python3 tools/analysis_tools/run_moe_only.py \\
        tools/analysis_tools/benchmark_moe.py --device cuda --precisions bf16
"""
import importlib
import os.path as osp
import runpy
import sys
import types

REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
#: Packages whose ``__init__`` imports more than the MoE modules need.
SKIPPED_INITS = ('sm3det', 'sm3det.models', 'sm3det.models.backbones')


def skip_package_inits() -> None:
    """Register ``SKIPPED_INITS`` as empty packages over their folders:
    their submodules import as usual, their ``__init__`` never runs. The
    compatibility fixes that ``sm3det/__init__`` applies first are
    applied."""
    for name in SKIPPED_INITS:
        package = types.ModuleType(name)
        package.__path__ = [osp.join(REPO_ROOT, *name.split('.'))]
        sys.modules[name] = package
    importlib.import_module('sm3det.compat')


def main() -> None:
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    script = sys.argv[1]
    sys.argv = sys.argv[1:]
    sys.path.insert(0, REPO_ROOT)
    skip_package_inits()
    runpy.run_path(script, run_name='__main__')


if __name__ == '__main__':
    main()
