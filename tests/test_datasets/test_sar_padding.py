"""SAR training batches are padded as test batches are: by the model's data
preprocessor, after normalisation, with its pad value (0 for the full
configs). A pipeline Pad (black pixels, about -2 once normalised) in
training only would show the model padding at test time it never saw.
"""
import json

import numpy as np
import pytest
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmrotate.registry import DATASETS, MODELS

from repository import REPO_ROOT
from sensor_images import amplitude, write_image

#: (width, height) of the images: a square one and a wide one, which the
#: pipelines resize to the full width and the batch pads at the bottom.
SIZES = [(100, 100), (100, 70)]


def sar_set(root):
    """Two 8-bit one-channel SAR images with one ship each, COCO json."""
    (root / 'images').mkdir()
    images, annotations = [], []
    for i, (width, height) in enumerate(SIZES):
        name = f'{i}.png'
        write_image(root / 'images' / name,
                    (amplitude(height, width, seed=i) / 5).astype(np.uint8))
        images.append(dict(id=i, file_name=name, width=width, height=height))
        annotations.append(
            dict(id=i, image_id=i, category_id=0, bbox=[10, 10, 30, 20]))
    (root / 'ann.json').write_text(
        json.dumps(
            dict(
                images=images,
                annotations=annotations,
                categories=[dict(id=0, name='ship')])))


@pytest.mark.parametrize(
    'config, pad_value',
    [('configs/sm3det/sm3det_convnext-t_fpn_33k_soi-det.py', 0.0),
     ('configs/sm3det/sm3det_convnext-mini_fpn_600it_soi-det-mini.py', -2.0)])
def test_sar_training_and_test_batches_pad_alike(tmp_path, config, pad_value):
    sar_set(tmp_path)
    cfg = Config.fromfile(f'{REPO_ROOT}/{config}')
    preprocessor = MODELS.build(cfg.model.data_preprocessor)
    assert preprocessor.pad_value == pad_value
    image_size = cfg.image_size
    padded = {}
    for split, loader in (('train', cfg.train_dataloader),
                          ('test', cfg.test_dataloader)):
        dataset = DATASETS.build(
            dict(
                loader.dataset.datasets[0],
                data_root=str(tmp_path) + '/',
                ann_file='ann.json',
                data_prefix=dict(img_path='images/')))
        assert dataset.metainfo['dataset_name'] == 'sar'
        order = [dataset.get_data_info(i)['img_id'] for i in range(2)]
        batch = pseudo_collate([dataset[order.index(i)] for i in range(2)])
        inputs = preprocessor(batch, training=split == 'train')['inputs']
        assert inputs.shape == (2, 3, image_size, image_size)
        wide = inputs[1]
        rows = image_size * SIZES[1][1] // SIZES[1][0]
        # the image itself is not at the pad value, the rows below are
        assert (wide[:, :rows] != pad_value).float().mean() > 0.99
        padded[split] = wide[:, rows:]
    for split in ('train', 'test'):
        assert padded[split].numel() > 0
        assert (padded[split] == pad_value).all(), split
