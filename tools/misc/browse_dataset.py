"""Draw a config's training-set ground truth, after its pipeline, into PNGs.

Works for a single dataset and for the concatenated multi-source SOI-Det set
(each part in turn): horizontal boxes as rectangles, oriented boxes as
polygons, labelled with the part's class names. Images are written as
``<dataset_name>_<index>.png``; the name comes from the sample's metainfo,
so a missing tag shows as ``untagged``.

    python tools/misc/browse_dataset.py \
        configs/_base_/datasets/soi_det_mini.py \
        --output-dir work_dirs/browse --max 4
"""
import argparse
import os
import os.path as osp

import cv2
import numpy as np
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmengine.runner import set_random_seed

# isort: off
import sm3det  # noqa: F401  (registers the datasets; must precede mmrotate)
from mmrotate.registry import DATASETS  # noqa: E402
from mmrotate.structures.bbox import RotatedBoxes, rbox2qbox  # noqa: E402
# isort: on


def draw_ground_truth(img: np.ndarray, boxes, labels, classes,
                      palette) -> np.ndarray:
    """Draw boxes (HorizontalBoxes or RotatedBoxes) with class names on a
    BGR image."""
    img = np.ascontiguousarray(img)
    if isinstance(boxes, RotatedBoxes):
        polygons = rbox2qbox(boxes.tensor).reshape(-1, 4, 2).numpy()
    else:
        x1, y1, x2, y2 = boxes.tensor.numpy().T
        polygons = np.stack([
            np.stack([x1, y1], 1),
            np.stack([x2, y1], 1),
            np.stack([x2, y2], 1),
            np.stack([x1, y2], 1)
        ], 1)
    for polygon, label in zip(polygons, labels.tolist()):
        color = tuple(int(c) for c in palette[label][::-1])  # palette is RGB
        points = np.round(polygon).astype(np.int32)
        cv2.polylines(img, [points], True, color, 1, lineType=cv2.LINE_AA)
        x, y = points.min(0)
        cv2.putText(
            img,
            classes[label], (int(x), max(int(y) - 2, 8)),
            cv2.FONT_HERSHEY_SIMPLEX,
            0.3,
            color,
            1,
            lineType=cv2.LINE_AA)
    return img


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config')
    parser.add_argument('--output-dir', required=True)
    parser.add_argument('--max', type=int, default=8, help='images per part')
    parser.add_argument(
        '--seed', type=int, default=0, help='seed of the random augmentations')
    args = parser.parse_args()
    cfg = Config.fromfile(args.config)
    init_default_scope(cfg.get('default_scope', 'mmrotate'))
    set_random_seed(args.seed)
    dataset = DATASETS.build(cfg.train_dataloader.dataset)
    os.makedirs(args.output_dir, exist_ok=True)
    for part in getattr(dataset, 'datasets', [dataset]):
        classes, palette = part.metainfo['classes'], part.metainfo['palette']
        for index in range(min(args.max, len(part))):
            item = part[index]
            sample = item['data_samples']
            img = item['inputs'].permute(1, 2, 0).numpy().astype(np.uint8)
            img = draw_ground_truth(img, sample.gt_instances.bboxes,
                                    sample.gt_instances.labels, classes,
                                    palette)
            name = sample.metainfo.get('dataset_name', 'untagged')
            cv2.imwrite(
                osp.join(args.output_dir, f'{name}_{index:04d}.png'), img)
        print(f'{part.metainfo.get("dataset_name")}: drew '
              f'{min(args.max, len(part))} images')


if __name__ == '__main__':
    main()
