"""A data loader over a few evenly spaced images of every dataset part."""
import numpy as np
from mmengine.dataset import ConcatDataset, pseudo_collate
from mmrotate.registry import DATASETS
from torch.utils.data import DataLoader, Subset


def build_subset_loader(dataloader_cfg: dict, num_images: int, batch_size: int,
                        num_workers: int) -> DataLoader:
    """A loader over ``num_images`` evenly spaced images of every part of
    the config's dataset (each part of a ConcatDataset, in order)."""
    dataset = DATASETS.build(dataloader_cfg['dataset'])
    parts = dataset.datasets if isinstance(dataset,
                                           ConcatDataset) else [dataset]
    indices, offset = [], 0
    for part in parts:
        count = min(num_images, len(part))
        indices += [
            offset + int(i) for i in np.linspace(0,
                                                 len(part) - 1, count).round()
        ]
        offset += len(part)
    return DataLoader(
        Subset(dataset, indices),
        batch_size=batch_size,
        shuffle=False,
        num_workers=num_workers,
        collate_fn=pseudo_collate)
