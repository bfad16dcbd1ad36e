"""A tiny ONNX detector with the graph interface of an exported SM3Det task,
for the runtime's tests.

``BrightCells`` cuts its input into 16 x 16 pixel cells and detects every
cell as a box, scored by the cell's mean red or blue (whichever is larger;
label 0 red, 1 blue), in [0, 1] with the metadata's mean 0 and std 255.
Each cell comes twice, the copy at half the score: the runtime's class-wise
NMS must remove it. So an image with pure red and blue rectangles on
black, aligned with the cells after resizing, gives known detections.
"""
import json
import os.path as osp
from typing import Callable, Optional, Sequence

import pytest
import torch
import torch.nn.functional as F
from torch import nn

#: Cell side in input (resized) pixels.
CELL = 16
#: The graph's input names.
INPUT_NAMES = ('image', 'image_size')


class BrightCells(nn.Module):
    """``image (1, 3, Hp, Wp), image_size (2,) -> boxes, scores, labels``.

    Args:
        rotated: give (cx, cy, w, h, 0) boxes instead of (x1, y1, x2, y2).
    """

    def __init__(self, rotated: bool):
        super().__init__()
        self.rotated = rotated

    def forward(self, image, image_size):
        # RGB after the preprocessor: red is channel 0, blue channel 2.
        cells = F.avg_pool2d(image[:, [0, 2]], CELL)[0]  # (2, h, w)
        # cumsum, not arange: the cell count must follow the input's size
        ones = torch.ones_like(cells[0])
        x1 = ((ones.cumsum(1) - 1) * CELL).reshape(-1)
        y1 = ((ones.cumsum(0) - 1) * CELL).reshape(-1)
        x2 = torch.minimum(x1 + CELL, image_size[1])
        y2 = torch.minimum(y1 + CELL, image_size[0])
        if self.rotated:
            boxes = torch.stack([(x1 + x2) / 2,
                                 (y1 + y2) / 2, x2 - x1, y2 - y1, x1 * 0], 1)
        else:
            boxes = torch.stack([x1, y1, x2, y2], 1)
        scores, labels = cells.reshape(2, -1).max(0)
        return (torch.cat([boxes, boxes]), torch.cat([scores, scores / 2]),
                torch.cat([labels, labels]))


def tiny_meta(box_type: str = 'hbox') -> dict:
    """Metadata of :class:`BrightCells` as a dict: test scale 256, inputs
    in [0, 1], score threshold 0.5."""
    return dict(
        format='sm3det-onnx',
        format_version=1,
        task='tiny',
        classes=['red', 'blue'],
        box_type=box_type,
        opset=17,
        preprocess=dict(
            scale=[256, 256],
            keep_ratio=True,
            interpolation='bilinear',
            mean=[0.0, 0.0, 0.0],
            std=[255.0, 255.0, 255.0],
            bgr_to_rgb=True,
            pad_size_divisor=32,
            pad_value=0.0,
            scaling=None),
        postprocess=dict(
            score_thr=0.5,
            nms_type='nms_rotated' if box_type == 'rbox' else 'nms',
            iou_threshold=0.5,
            max_per_img=100),
        source=dict(model='BrightCells (tests/test_deploy/conftest.py)'))


def export_bright_cells(path: str,
                        rotated: bool,
                        input_names: Sequence[str] = INPUT_NAMES) -> str:
    """Export :class:`BrightCells` to ``path`` (opset 17, TorchScript
    exporter, any input size)."""
    outputs = ('boxes', 'scores', 'labels')
    dynamic_axes = {name: {0: 'count'} for name in outputs}
    dynamic_axes[input_names[0]] = {2: 'height', 3: 'width'}
    torch.onnx.export(
        BrightCells(rotated),
        (torch.zeros(1, 3, 64, 96), torch.tensor([64.0, 80.0])),
        path,
        input_names=list(input_names),
        output_names=list(outputs),
        dynamic_axes=dynamic_axes,
        opset_version=17,
        dynamo=False)
    return path


@pytest.fixture(scope='session')
def tiny_detector(tmp_path_factory):
    """``make(box_type='hbox', edit=None, input_names=..., meta=True) ->
    onnx path``: :class:`BrightCells` exported into a new folder, with its
    :func:`tiny_meta` (changed in place by ``edit(meta)`` first; left out
    when ``meta`` is False)."""
    exported = {}

    def make(box_type: str = 'hbox',
             edit: Optional[Callable[[dict], None]] = None,
             input_names: Sequence[str] = INPUT_NAMES,
             meta: bool = True) -> str:
        key = (box_type, tuple(input_names))
        if key not in exported:
            path = str(tmp_path_factory.mktemp('export') / 'tiny.onnx')
            export_bright_cells(path, box_type == 'rbox', input_names)
            with open(path, 'rb') as f:
                exported[key] = f.read()
        path = osp.join(tmp_path_factory.mktemp('tiny'), 'tiny.onnx')
        with open(path, 'wb') as f:
            f.write(exported[key])
        if meta:
            data = tiny_meta(box_type)
            if edit is not None:
                edit(data)
            with open(osp.splitext(path)[0] + '.json', 'w') as f:
                json.dump(data, f)
        return path

    return make
