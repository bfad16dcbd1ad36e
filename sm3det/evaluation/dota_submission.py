"""Write oriented detections in the DOTA "Task1" submission format.

One text file per class, ``Task1_<class>.txt``, one line per detection:
``image_id score x1 y1 x2 y2 x3 y3 x4 y4`` (the four corners in pixels).
SM3Det evaluates DOTA on the 800x800 val patches without merging them back to
full images (METHOD.md section 2), so ``image_id`` is the patch id.
"""
import os
import os.path as osp
from typing import List, Sequence

import torch
from mmrotate.structures.bbox import rbox2qbox


def write_dota_task1(out_dir: str, samples: Sequence[dict],
                     classes: Sequence[str]) -> List[str]:
    """Write one ``Task1_<class>.txt`` per class into ``out_dir``.

    Args:
        out_dir: folder to write into (created when missing; files of the
            same names are overwritten).
        samples: one dict per image with ``img_id`` and numpy arrays
            ``bboxes`` (N, 5) cx,cy,w,h,angle (radians), ``scores`` (N,),
            ``labels`` (N,) class indices into ``classes``.
        classes: the class names.

    Returns:
        list[str]: the written file paths, in class order (a file is written
        for every class, empty when the class has no detection).
    """
    os.makedirs(out_dir, exist_ok=True)
    lines_per_class = [[] for _ in classes]
    for sample in samples:
        corners = rbox2qbox(torch.from_numpy(sample['bboxes'])).numpy()
        for corner, score, label in zip(corners, sample['scores'],
                                        sample['labels']):
            coords = ' '.join(f'{v:.2f}' for v in corner)
            lines_per_class[label].append(
                f'{sample["img_id"]} {score:.4f} {coords}\n')
    paths = []
    for name, lines in zip(classes, lines_per_class):
        path = osp.join(out_dir, f'Task1_{name}.txt')
        with open(path, 'w') as f:
            f.writelines(lines)
        paths.append(path)
    return paths
