"""Detectors written as an installed mmdet / mmrotate config plus changes.

A task head of SM3Det, or a single-dataset detector, is a stock detector
(``mmdet::gfl/gfl_r50_fpn_1x_coco.py``, ``mmrotate::roi_trans/...``) with a
few changes: the number of classes, narrower heads, other proposal counts.
Its config names the stock config and writes only those changes::

    dict(type='StockDetector',
         config='mmrotate::oriented_rcnn/oriented-rcnn-le90_r50_fpn_1x_dota.py',
         roi_head=dict(bbox_head=dict(num_classes=5)))

It is resolved when it is built: the stock config's ``model`` (loaded as a
config inheriting it would: ``_scope_`` set to the stock's package), less its
trunk (backbone, neck, data preprocessor: SM3Det shares its own, a
single-dataset config gives its own), with the changes merged by mmengine's
config merge (``_delete_=True`` replaces a dict, ``'0'``, ``'1'`` keys index
a list, e.g. a cascade's stages). ``config`` may also be another such dict,
whose resolved detector is then the start (e.g. a head at a smaller scale).

An old-style config cannot do this itself: two stock detector configs both
define ``model`` and other top-level keys, and mmengine refuses duplicate keys
among the bases of a config.
"""
import copy
import os.path as osp
from functools import lru_cache
from importlib import import_module
from typing import Union

from mmengine.config import Config, ConfigDict
from mmrotate.registry import MODELS
from torch import nn

#: What a stock detector config's ``model`` holds besides the detector.
TRUNK_KEYS = ('backbone', 'neck', 'data_preprocessor')


@lru_cache(maxsize=None)
def _stock_model(config: str) -> ConfigDict:
    package, sep, path = config.partition('::')
    if not sep:
        raise ValueError(
            f'StockDetector: config {config!r} is no installed config; give '
            "it as 'mmdet::<path>' or 'mmrotate::<path>' (the path under the "
            "package's configs/)")
    try:
        # The file and scope mmengine's `_base_ = '<package>::<path>'` reads
        # (without its package lookup, which imports the slow pkg_resources).
        stock = Config.fromfile(
            osp.join(
                osp.dirname(import_module(package).__file__), '.mim',
                'configs', path))
    except (ImportError, FileNotFoundError) as error:
        raise ValueError(
            f'StockDetector: cannot load the stock config {config!r}: '
            f'{error}') from error
    if 'model' not in stock:
        raise ValueError(f'StockDetector: the stock config {config!r} has no '
                         '`model`')
    return ConfigDict(stock.model, _scope_=package)


def stock_detector_cfg(config: Union[str, dict], **changes) -> ConfigDict:
    """The detector config of a ``StockDetector`` (see the module docstring).

    Args:
        config (str | dict): an installed config, ``'<package>::<path>'``, or
            another ``StockDetector`` config to start from.
        **changes: merged into the stock detector, as a config inheriting
            it merges its own ``model``.

    Returns:
        ConfigDict: a plain detector config (its own ``type``), without
        backbone, neck and data preprocessor unless ``changes`` give them.

    Raises:
        ValueError: ``config`` cannot be loaded (its name in the message).
    """
    if isinstance(config, str):
        model = copy.deepcopy(_stock_model(config))
        for key in TRUNK_KEYS:
            model.pop(key, None)
    else:
        config = dict(config)
        if config.pop('type', None) != 'StockDetector':
            raise ValueError('StockDetector: `config` is a stock config name '
                             f'or a StockDetector config; got {config}')
        model = stock_detector_cfg(**config)
    resolved = Config(dict(model=model))
    resolved.merge_from_dict(dict(model=copy.deepcopy(changes)))
    return resolved.model


def resolve_stock_detectors(model_cfg: dict) -> ConfigDict:
    """``model_cfg`` (a whole model config) with every ``StockDetector`` in
    it resolved: the model itself, or each detector of SM3Det's ``tasks``.
    What tools that read a model config before building it should see."""
    model_cfg = ConfigDict(copy.deepcopy(model_cfg))
    if model_cfg.get('type') == 'StockDetector':
        return stock_detector_cfg(**{
            k: v
            for k, v in model_cfg.items() if k != 'type'
        })
    for task in model_cfg.get('tasks', {}).values():
        if task.detector.get('type') == 'StockDetector':
            task.detector = stock_detector_cfg(**{
                k: v
                for k, v in task.detector.items() if k != 'type'
            })
    return model_cfg


@MODELS.register_module('StockDetector')
def build_stock_detector(config: Union[str, dict], **changes) -> nn.Module:
    """Build the detector of :func:`stock_detector_cfg`."""
    return MODELS.build(stock_detector_cfg(config, **changes))
