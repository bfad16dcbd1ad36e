"""Shared pytest setup: the plugin is imported first (its compatibility fixes
must run before mmrotate is imported) and every test runs in MMRotate's
registry scope, as the configs do."""
import os.path as osp

import pytest

import sm3det  # noqa: F401
from mmengine.registry import init_default_scope

REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))


@pytest.fixture(autouse=True)
def mmrotate_scope():
    init_default_scope('mmrotate')


@pytest.fixture
def repo_root():
    return REPO_ROOT
