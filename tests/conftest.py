"""Shared pytest setup: the plugin is imported first (its compatibility fixes
must run before mmrotate is imported) and every test runs in MMRotate's
registry scope, as the configs do."""
import os

# Before torch loads OpenMP: spinning waits make the tests' training runs
# ~20x slower whenever another process wants one of the two cores.
os.environ.setdefault('OMP_WAIT_POLICY', 'PASSIVE')

import pytest  # noqa: E402
from mmengine.registry import init_default_scope  # noqa: E402

import sm3det  # noqa: F401,E402
from repository import REPO_ROOT  # noqa: E402


@pytest.fixture(autouse=True)
def mmrotate_scope():
    init_default_scope('mmrotate')


@pytest.fixture
def repo_root():
    return REPO_ROOT


@pytest.fixture(scope='session')
def trained_mini(tmp_path_factory):
    """SM3Det-mini trained briefly on a generated SOI-Det-mini, once per
    session (see tests/mini_training.py)."""
    from mini_training import train_mini
    init_default_scope('mmrotate')
    return train_mini(str(tmp_path_factory.mktemp('trained_mini')))
