"""mmrotate's stock Oriented R-CNN and mmdet's stock GFL train and predict.

Both configs are read from the installed packages, with a ResNet-18 and no
pretrained weights, on a 128 x 128 image with two objects.
"""
import os.path as osp

import mmdet
import mmrotate
import pytest
import torch
from mmdet.structures import DetDataSample
from mmdet.structures.bbox import HorizontalBoxes
from mmengine.config import Config
from mmengine.optim import OptimWrapper
from mmengine.structures import InstanceData
from mmrotate.registry import MODELS
from mmrotate.structures.bbox import RotatedBoxes

STOCK = {
    'oriented_rcnn': (mmrotate, 'oriented_rcnn/'
                      'oriented-rcnn-le90_r50_fpn_1x_dota.py'),
    'gfl': (mmdet, 'gfl/gfl_r50_fpn_1x_coco.py'),
}


def stock_model(name):
    package, path = STOCK[name]
    cfg = Config.fromfile(
        osp.join(osp.dirname(package.__file__), '.mim', 'configs', path))
    model = cfg.model
    model.backbone.update(depth=18, init_cfg=None, norm_eval=False)
    model.neck.in_channels = [64, 128, 256, 512]
    # Build each stock model in the scope its config was written for.
    model['_scope_'] = package.__name__
    return MODELS.build(model)


def batch(rotated):
    img = torch.randint(0, 255, (3, 128, 128), dtype=torch.uint8)
    sample = DetDataSample(
        metainfo=dict(
            img_shape=(128, 128),
            ori_shape=(128, 128),
            pad_shape=(128, 128),
            scale_factor=(1.0, 1.0)))
    gt = InstanceData(labels=torch.tensor([0, 1]))
    if rotated:
        gt.bboxes = RotatedBoxes(
            torch.tensor([[40., 40., 40., 20., 0.3],
                          [90., 80., 30., 30., -0.5]]))
    else:
        gt.bboxes = HorizontalBoxes(
            torch.tensor([[20., 30., 60., 50.], [75., 65., 105., 95.]]))
        gt.bboxes = gt.bboxes.tensor  # mmdet models want tensor boxes
    sample.gt_instances = gt
    return dict(inputs=[img], data_samples=[sample])


@pytest.mark.parametrize('name', ['oriented_rcnn', 'gfl'])
def test_train_step_and_predict(name):
    torch.manual_seed(0)
    model = stock_model(name)
    model.init_weights()
    optim = OptimWrapper(torch.optim.SGD(model.parameters(), lr=1e-3))
    data = batch(rotated=name == 'oriented_rcnn')

    log_vars = model.train_step(data, optim)
    assert log_vars['loss'].isfinite()
    assert all(torch.as_tensor(v).isfinite().all() for v in log_vars.values())

    model.eval()
    data['data_samples'][0].gt_instances = InstanceData()
    with torch.no_grad():
        pred = model.test_step(data)[0].pred_instances
    box_dim = 5 if name == 'oriented_rcnn' else 4
    bboxes = getattr(pred.bboxes, 'tensor', pred.bboxes)
    assert bboxes.shape[-1] == box_dim
    assert len(pred.scores) == len(bboxes) == len(pred.labels)
