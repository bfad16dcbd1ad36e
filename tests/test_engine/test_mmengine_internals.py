"""A private part of mmengine that SM3Det relies on and that the installed
mmengine lacks is named, with the mmengine version and the module that
gathers them, instead of failing somewhere inside a run."""
import mmengine
import pytest

from sm3det.engine.mmengine_internals import load_or_resume_args


def test_a_missing_private_attribute_is_named():
    runner_of_another_release = object()
    with pytest.raises(RuntimeError) as error:
        load_or_resume_args(runner_of_another_release)
    message = str(error.value)
    assert ('Runner._load_from / Runner._resume is not in mmengine '
            f'{mmengine.__version__}') in message
    assert 'sm3det/engine/mmengine_internals.py' in message
