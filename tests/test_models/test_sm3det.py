"""SM3Det routes every sample to the head of its dataset, and only there."""
import os.path as osp

import pytest
import torch
from mmdet.structures import DetDataSample
from mmdet.structures.bbox import HorizontalBoxes
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmengine.structures import InstanceData
from mmrotate.registry import MODELS
from mmrotate.structures.bbox import RotatedBoxes

MINI_CONFIG = 'configs/sm3det/sm3det_convnext-mini_fpn_600it_soi-det-mini.py'


@pytest.fixture(scope='module')
def model():
    init_default_scope('mmrotate')  # module fixtures run before autouse ones
    root = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
    cfg = Config.fromfile(osp.join(root, MINI_CONFIG))
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    return model


def sample(dataset_name, img_id, size=64):
    meta = dict(
        img_id=img_id,
        dataset_name=dataset_name,
        img_shape=(size, size),
        ori_shape=(size, size),
        pad_shape=(size, size),
        scale_factor=(1.0, 1.0))
    gt = InstanceData(labels=torch.tensor([1, 0]))
    if dataset_name == 'sar':
        gt.bboxes = HorizontalBoxes(
            torch.tensor([[8., 8., 30., 24.], [36., 30., 56., 60.]]))
    else:
        gt.bboxes = RotatedBoxes(
            torch.tensor([[20., 20., 24., 12., 0.4], [44., 44., 16., 16.,
                                                      0.]]))
    return DetDataSample(metainfo=meta, gt_instances=gt)


def batch(*names):
    samples = [sample(name, i) for i, name in enumerate(names)]
    inputs = [
        torch.randint(0, 255, (3, 64, 64), dtype=torch.uint8) for _ in names
    ]
    return dict(inputs=inputs, data_samples=samples)


def spy_on_heads(model, monkeypatch):
    """Record, per head, the image ids and the pyramid rows it receives."""
    seen, pyramids = {}, []
    neck_forward = model.neck.forward

    def record_pyramid(feats):
        out = neck_forward(feats)
        pyramids.append(out)
        return out

    monkeypatch.setattr(model.neck, 'forward', record_pyramid)
    for name, head in model.heads.items():

        def record_samples(feats, samples, _name=name, _loss=head.loss):
            seen[_name] = [[s.img_id for s in samples]]
            return _loss(feats, samples)

        def record_levels(feats, _name=name, _extract=head.extract_feat):
            levels = _extract(feats)
            seen[_name].append(levels)
            return levels

        monkeypatch.setattr(head, 'loss', record_samples)
        monkeypatch.setattr(head, 'extract_feat', record_levels)
    return seen, pyramids


def test_each_head_gets_exactly_its_samples(model, monkeypatch):
    seen, pyramids = spy_on_heads(model, monkeypatch)
    data = model.data_preprocessor(
        batch('sar', 'dota', 'sar', 'dronevehicle'), training=True)
    losses = model(**data, mode='loss')

    assert {
        k: v[0]
        for k, v in seen.items()
    } == {
        'sar': [0, 2],
        'dota': [1],
        'dronevehicle': [3]
    }
    full = pyramids[0]
    levels = {
        'sar': (1, 2, 3, 4, 5),
        'dota': (0, 1, 2, 3, 4),
        'dronevehicle': (0, 1, 2, 3, 4)
    }
    for name, (ids, feats) in seen.items():
        assert len(feats) == 5
        for feat, level in zip(feats, levels[name]):
            assert torch.equal(feat, full[level][ids])
    for prefix in ('sar.loss_cls', 'dota.loss_rpn_cls', 'dota.loss_cls',
                   'dronevehicle.loss_bbox', 'loss_moe_balance'):
        assert prefix in losses


def test_batch_without_a_dataset_trains(model, monkeypatch):
    seen, _ = spy_on_heads(model, monkeypatch)
    optim = torch.optim.SGD(model.parameters(), lr=1e-4)
    from mmengine.optim import OptimWrapper
    log_vars = model.train_step(
        batch('sar', 'sar', 'dota'), OptimWrapper(optim))
    assert set(seen) == {'sar', 'dota'}
    assert not any(k.startswith('dronevehicle.') for k in log_vars)
    assert torch.isfinite(log_vars['loss'])


def test_predict_gives_each_dataset_its_box_type(model):
    model.eval()
    with torch.no_grad():
        out = model.test_step(batch('dota', 'sar', 'dronevehicle'))
    model.train()
    dims = [
        getattr(s.pred_instances.bboxes, 'tensor',
                s.pred_instances.bboxes).shape[-1] for s in out
    ]
    assert dims == [5, 4, 5]
    assert [s.dataset_name for s in out] == ['dota', 'sar', 'dronevehicle']


def test_unknown_or_missing_tag_is_a_clear_error(model):
    data = model.data_preprocessor(batch('sar', 'optical'), training=True)
    with pytest.raises(KeyError, match="dataset_name='optical'"):
        model(**data, mode='loss')


def test_bad_task_config_is_rejected():

    def build(tasks):
        return MODELS.build(
            dict(
                type='SM3Det',
                backbone=dict(type='ConvNeXtMoE', arch='mini', moe_blocks=[]),
                neck=dict(
                    type='mmdet.FPN',
                    in_channels=[32, 64, 128, 256],
                    out_channels=16,
                    num_outs=4),
                tasks=tasks))

    with pytest.raises(ValueError, match='feat_levels'):
        build(dict(sar=dict(detector=dict(type='mmdet.GFL'))))
    # '.' separates the task from its loss keys (sar.v2.loss_cls?).
    with pytest.raises(ValueError, match="without '.' and '/'"):
        build({
            'sar.v2':
            dict(detector=dict(type='mmdet.GFL'), feat_levels=(0, 1))
        })


def test_dumped_config_builds_the_same_parameter_order(tmp_path):
    """Resuming with the work dir's copy of the config (dumped with sorted
    keys) must give the optimizer state the same parameter layout."""
    init_default_scope('mmrotate')
    root = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
    cfg = Config.fromfile(osp.join(root, MINI_CONFIG))
    cfg.dump(str(tmp_path / 'dumped.py'))
    dumped = Config.fromfile(str(tmp_path / 'dumped.py'))
    assert list(dumped.model.tasks) != list(cfg.model.tasks)
    orders = []
    for model_cfg in (cfg.model, dumped.model):
        with torch.device('meta'):
            model = MODELS.build(model_cfg)
        orders.append([name for name, _ in model.named_parameters()])
    assert orders[0] == orders[1]
