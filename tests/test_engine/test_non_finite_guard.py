"""A step whose loss or gradient is NaN / inf changes no weight and no
optimizer state; it is counted and logged, and too many in a row stop the
run with a message that names the iteration, the losses, the images and the
last checkpoint."""
import copy
import itertools

import pytest
import torch
from mmengine.hooks import Hook
from torch import nn

from sm3det.datasets import ResumableMultiSourceSampler
from sm3det.engine import (SkipNonFiniteAmpOptimWrapper,
                           SkipNonFiniteOptimWrapper)
from resumable_training import (SOURCES, ToyPart, assert_equal_nested,
                                make_dataset, make_runner)


def build_wrapper(wrapper_type, monkeypatch, **kwargs):
    if wrapper_type is SkipNonFiniteAmpOptimWrapper and \
            not torch.cuda.is_available():
        # mmengine refuses AmpOptimWrapper without an accelerator; on CPU its
        # grad scaler disables itself, which is all this test needs.
        monkeypatch.setattr(
            'mmengine.optim.optimizer.amp_optimizer_wrapper.'
            'is_cuda_available', lambda: True)
    torch.manual_seed(0)
    model = nn.Linear(3, 1)
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.1)
    return model, wrapper_type(optimizer=optimizer, **kwargs)


def loss_of(model, scale=1.0):
    return model(torch.ones(2, 3)).pow(2).mean() * scale


@pytest.mark.filterwarnings('ignore:.*GradScaler')
@pytest.mark.parametrize(
    'wrapper_type', [SkipNonFiniteOptimWrapper, SkipNonFiniteAmpOptimWrapper])
def test_nan_loss_changes_nothing(wrapper_type, monkeypatch):
    model, wrapper = build_wrapper(wrapper_type, monkeypatch)
    wrapper.update_params(loss_of(model))  # AdamW has moments now
    weights = copy.deepcopy(model.state_dict())
    state = copy.deepcopy(wrapper.optimizer.state_dict())

    wrapper.update_params(loss_of(model, float('nan')))
    assert_equal_nested(model.state_dict(), weights, 'weights')
    assert_equal_nested(wrapper.optimizer.state_dict(), state)
    assert all(p.grad is None for p in model.parameters())
    assert (wrapper.skipped_steps, wrapper.consecutive_skips) == (1, 1)

    wrapper.update_params(loss_of(model))
    assert not torch.equal(model.weight, weights['weight'])
    assert torch.isfinite(model.weight).all()
    assert (wrapper.skipped_steps, wrapper.consecutive_skips) == (1, 0)
    assert wrapper.state_dict()['skipped_steps'] == 1


def test_non_finite_gradient_and_accumulation(monkeypatch):
    model, wrapper = build_wrapper(
        SkipNonFiniteOptimWrapper, monkeypatch, accumulative_counts=2)
    wrapper.initialize_count_status(model, 0, 4)
    weights = copy.deepcopy(model.state_dict())
    # Finite loss (0), NaN gradient (d sqrt(x) / dx at 0).
    wrapper.update_params(torch.sqrt(model.weight.sum() * 0))
    wrapper.update_params(loss_of(model))  # the window's step: skipped
    assert_equal_nested(model.state_dict(), weights, 'weights')
    assert wrapper.skipped_steps == 1
    # A NaN loss early in a window poisons the window's step.
    wrapper.update_params(loss_of(model, float('nan')))
    wrapper.update_params(loss_of(model))
    assert_equal_nested(model.state_dict(), weights, 'weights')
    assert wrapper.consecutive_skips == 2


class RecordWeights(Hook):
    """Weights before and after every iteration."""

    def __init__(self):
        self.before, self.after = [], []

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        self.before.append(copy.deepcopy(runner.model.state_dict()))

    def after_train_iter(self,
                         runner,
                         batch_idx,
                         data_batch=None,
                         outputs=None):
        self.after.append(copy.deepcopy(runner.model.state_dict()))


@pytest.fixture
def poisoned():
    yield ToyPart.poisoned
    ToyPart.poisoned.clear()


def test_one_nan_batch_is_skipped_and_logged(tmp_path, poisoned, caplog):
    # The 'b' sample of iteration 2 (the runner's sampler seed is 0).
    sampler = ResumableMultiSourceSampler(
        make_dataset(), batch_size=4, source_ratio=[2, 1, 1], seed=0)
    index = list(itertools.islice(sampler, 8))[6]
    poisoned.add((SOURCES[index // 8], index % 8))
    weights = RecordWeights()
    runner, _, log = make_runner(tmp_path, max_iters=3, custom_hooks=[weights])
    runner.train()

    assert torch.isnan(torch.tensor(log.losses[1]['b.loss']))
    assert_equal_nested(weights.after[1], weights.before[1], 'weights')
    for step in (0, 2):
        assert not torch.equal(weights.after[step]['stem.weight'],
                               weights.before[step]['stem.weight'])
    assert all(torch.isfinite(w).all() for w in weights.after[2].values())
    assert runner.optim_wrapper.skipped_steps == 1
    assert runner.message_hub.get_scalar('train/skipped_steps').current() == 1
    image = f'{SOURCES[index // 8]}/{index % 8:02d}.png'
    with open(f'{runner.log_dir}/{runner.timestamp}.log') as f:
        text = f.read()
    assert 'non-finite loss at iteration 2' in text and image in text
    assert 'skipped the optimizer step at iteration 2' in text


def test_consecutive_skips_stop_the_run(tmp_path, poisoned):
    # From iteration 3 on every 'b' sample (one per batch) is NaN.
    runner, _, _ = make_runner(tmp_path, max_iters=8, interval=2)

    class PoisonFromIteration3(Hook):

        def before_train_iter(self, runner, batch_idx, data_batch=None):
            if runner.iter == 1:  # iteration 3's batch is drawn after this
                poisoned.update(('b', number) for number in range(8))

    runner.register_hook(PoisonFromIteration3())
    with pytest.raises(RuntimeError) as error:
        runner.train()
    message = str(error.value)
    assert 'stopping at iteration 4' in message
    assert '2 optimizer steps in a row' in message
    assert 'b.loss' in message and 'nan' in message
    assert 'b/' in message  # the image paths
    assert f'{tmp_path}/iter_2.pth' in message
