"""Operations whose PyTorch form has no standard ONNX equivalent, written so
that tracing gives standard operators.

- :func:`nms_indices`: greedy NMS, ONNX ``NonMaxSuppression`` in the graph;
- :func:`topk_up_to`: the top ``min(k, n)`` of ``n`` values, ``n`` known only
  when the graph runs (a traced ``min(k, n)`` would freeze ``n``).
"""
import torch
from mmcv.utils import ext_loader
from torch import Tensor

# The kernel, not mmcv.ops.nms: that is itself a traced autograd Function.
ext_module = ext_loader.load_ext('_ext', ['nms'])

#: NonMaxSuppression's cap on kept boxes per class (0 would keep none).
MAX_KEPT = 2**31 - 1


class _NMSIndices(torch.autograd.Function):
    """mmcv's NMS in PyTorch, ONNX's ``NonMaxSuppression`` when exported.

    Both keep a box unless a kept box of higher score overlaps it with
    IoU > threshold (boxes x1, y1, x2, y2, no +1 on the sides) and return
    the kept indices by decreasing score.
    """

    @staticmethod
    def forward(ctx, boxes: Tensor, scores: Tensor,
                iou_threshold: float) -> Tensor:
        # Untraced: the ONNX graph gets the symbolic below, and the tracer
        # fails on a kernel's operations recorded inside a Function.
        state = torch._C._get_tracing_state()
        torch._C._set_tracing_state(None)
        try:
            return ext_module.nms(
                boxes, scores, iou_threshold=iou_threshold, offset=0)
        finally:
            torch._C._set_tracing_state(state)

    @staticmethod
    def symbolic(g, boxes, scores, iou_threshold: float):
        batched_boxes = g.op('Unsqueeze', boxes,
                             g.op('Constant', value_t=torch.tensor([0])))
        class_scores = g.op('Unsqueeze', scores,
                            g.op('Constant', value_t=torch.tensor([0, 1])))
        selected = g.op(
            'NonMaxSuppression', batched_boxes, class_scores,
            g.op('Constant', value_t=torch.tensor([MAX_KEPT])),
            g.op(
                'Constant',
                value_t=torch.tensor([iou_threshold], dtype=torch.float)))
        # (kept, 3) rows of (batch, class, box): the box column.
        return g.op(
            'Squeeze',
            g.op(
                'Gather',
                selected,
                g.op('Constant', value_t=torch.tensor([2])),
                axis_i=1), g.op('Constant', value_t=torch.tensor([1])))


def nms_indices(boxes: Tensor, scores: Tensor, iou_threshold: float) -> Tensor:
    """Kept indices (int64, by decreasing score) of greedy NMS.

    Args:
        boxes: ``(N, 4)`` x1, y1, x2, y2.
        scores: ``(N,)``.
        iou_threshold: a box is dropped when its IoU with a kept box is
            above it.
    """
    return _NMSIndices.apply(boxes, scores, float(iou_threshold))


def topk_up_to(values: Tensor, k: int):
    """``values.topk(min(k, n))`` of a 1-D tensor, ``n`` read when the graph
    runs; values (descending) and indices."""
    count = torch._shape_as_tensor(values)[0]
    return values.topk(torch.clamp(count, max=k))
