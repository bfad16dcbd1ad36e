"""SM3Det: one detector for SAR, optical and infrared remote sensing images.

Importing this package registers every module into MMRotate 1.x's registries
(mmdet modules as ``mmdet.X``). The stack's compatibility fixes come first:
``sm3det_compat`` is imported at interpreter start by the ``.pth`` file that
installing this project adds; importing it here covers a run from a checkout
that was never installed. It must precede every import of mmcv, mmdet and
mmrotate below (tests/test_stack/test_import_order.py checks it in an
interpreter without the startup hook).

The modules are registered only where torch is installed: a deployment
machine with numpy, onnxruntime and OpenCV alone imports ``sm3det.deploy``.
"""
import importlib.util

import sm3det_compat  # noqa: F401  (first: before anything imports mmrotate)

if importlib.util.find_spec('torch') is not None:
    from . import apis, datasets, engine, evaluation, models, utils  # noqa

__version__ = '0.1.0'
