"""The runtime's preprocessing equals, to the bit, the configs' test pipeline
(``LoadSensorImage``, mmdet ``Resize``, ``PackDetInputs``) followed by the
model's ``DetDataPreprocessor``: the input tensor, ``img_shape`` and
``scale_factor``, for images of several sizes and aspect ratios."""
import os.path as osp

import numpy as np
import pytest
from mmdet.datasets.transforms import Resize
from mmengine.config import Config
from mmengine.dataset import Compose, pseudo_collate
from mmrotate.registry import MODELS

from sm3det.apis import inference_pipeline, task_specs
from sm3det.deploy import DeployMeta
from sm3det.deploy.preprocess import preprocess
from repository import REPO_ROOT

CONFIGS = {
    'mini': 'configs/sm3det/sm3det_convnext-mini_fpn_600it_soi-det-mini.py',
    'full': 'configs/sm3det/sm3det_convnext-t_fpn_33k_soi-det.py',
}
#: (height, width): small, large, portrait, landscape, square, odd sizes.
SIZES = [(37, 53), (1500, 1100), (300, 120), (120, 700), (256, 256),
         (801, 799), (12, 3000)]
TASK = 'dota'


class Reference:
    """A config's test pipeline and data preprocessor for one task, and the
    metadata an export of it has (read from the built transforms).

    Args:
        config: path relative to the repository root.
        resize: changes to the test pipeline's Resize (e.g. keep_ratio).
    """

    def __init__(self, config: str, **resize):
        cfg = Config.fromfile(osp.join(REPO_ROOT, config))
        pipeline = inference_pipeline(task_specs(cfg)[TASK], 'LoadSensorImage')
        for step in pipeline:
            if step['type'].endswith('Resize'):
                step.update(resize)
        self.pipeline = Compose(pipeline)
        self.preprocessor = MODELS.build(cfg.model.data_preprocessor)
        rescale = next(
            t for t in self.pipeline.transforms if isinstance(t, Resize))
        pre = self.preprocessor
        self.meta = DeployMeta(
            task=TASK,
            classes=['c'],
            box_type='rbox',
            opset=17,
            preprocess=dict(
                scale=list(rescale.scale),
                keep_ratio=rescale.keep_ratio,
                interpolation=rescale.interpolation,
                mean=pre.mean.flatten().tolist(),
                std=pre.std.flatten().tolist(),
                bgr_to_rgb=pre._channel_conversion,
                pad_size_divisor=pre.pad_size_divisor,
                pad_value=float(pre.pad_value),
                scaling=None),
            postprocess=dict(
                score_thr=0.05,
                nms_type='nms_rotated',
                iou_threshold=0.1,
                max_per_img=2000))

    def __call__(self, image: np.ndarray):
        """(inputs (1, 3, Hp, Wp), img_shape, scale_factor) of the PyTorch
        route."""
        sample = self.pipeline(
            dict(img=image, img_path=None, img_id='0', dataset_name=TASK))
        data = self.preprocessor(pseudo_collate([sample]), False)
        meta = data['data_samples'][0]
        return data['inputs'].numpy(), meta.img_shape, meta.scale_factor


@pytest.fixture(scope='module')
def references():
    """Per (config, resize changes): its :class:`Reference`."""
    built = {}

    def get(config, **resize):
        key = (config, tuple(sorted(resize.items())))
        if key not in built:
            built[key] = Reference(CONFIGS[config], **resize)
        return built[key]

    return get


@pytest.mark.parametrize('config, resize', [
    ('mini', {}),
    ('full', {}),
    ('mini', dict(keep_ratio=False, scale=(320, 192))),
])
def test_preprocess_is_the_pipeline_and_data_preprocessor(
        references, config, resize):
    reference = references(config, **resize)
    rng = np.random.default_rng(0)
    for height, width in SIZES:
        image = rng.integers(0, 256, (height, width, 3), np.uint8)
        expected, img_shape, scale_factor = reference(image)
        inputs, image_size, factor = preprocess(image, reference.meta)
        assert inputs.dtype == np.float32 and image_size.dtype == np.float32
        np.testing.assert_array_equal(inputs, expected)
        assert tuple(image_size) == img_shape
        assert factor == scale_factor


def test_preprocess_refuses_what_the_graph_cannot_take(references):
    meta = references('mini').meta
    with pytest.raises(
            ValueError,
            match=r'takes a \(H, W, 3\) uint8 BGR '
            r'image, got float32 \(8, 8, 3\)'):
        preprocess(np.zeros((8, 8, 3), np.float32), meta)
    with pytest.raises(ValueError, match=r'got uint8 \(8, 8\)'):
        preprocess(np.zeros((8, 8), np.uint8), meta)
    with pytest.raises(
            ValueError,
            match='3000 x 5 pixels is resized to '
            '256 x 0 .* too thin'):
        preprocess(np.zeros((5, 3000, 3), np.uint8), meta)
