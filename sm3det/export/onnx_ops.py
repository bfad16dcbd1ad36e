"""Operations whose PyTorch form has no standard ONNX equivalent, written so
that tracing gives standard operators.

- :func:`nms_indices`: greedy NMS, ONNX ``NonMaxSuppression`` in the graph;
- :func:`topk_up_to`: the top ``min(k, n)`` of ``n`` values, ``n`` known only
  when the graph runs (a traced ``min(k, n)`` would freeze ``n``);
- :func:`traceable_attention`: ``nn.MultiheadAttention`` whose traced shapes
  follow the input.
"""
import contextlib
from typing import Iterator

import torch
import torch.nn.functional as F
from mmcv.utils import ext_loader
from torch import Tensor, nn

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


@contextlib.contextmanager
def traceable_attention() -> Iterator[None]:
    """Within the block, ``nn.MultiheadAttention`` computes attention with
    plain operations whose shapes follow the input (PVTv2's spatial-
    reduction attention): torch's own forward traces with the key length
    of the example frozen."""
    stock = nn.MultiheadAttention.forward
    nn.MultiheadAttention.forward = _attention
    try:
        yield
    finally:
        nn.MultiheadAttention.forward = stock


def _attention(self: nn.MultiheadAttention,
               query: Tensor,
               key: Tensor,
               value: Tensor,
               key_padding_mask=None,
               need_weights: bool = True,
               attn_mask=None,
               average_attn_weights: bool = True,
               is_causal: bool = False):
    """``nn.MultiheadAttention.forward`` without masks, in inference:
    ``(output, None)``."""
    if (key_padding_mask is not None or attn_mask is not None or is_causal
            or not self._qkv_same_embed_dim or self.bias_k is not None
            or self.add_zero_attn):
        raise ValueError(
            'the ONNX export takes nn.MultiheadAttention without masks, '
            'separate key/value sizes, bias_k/bias_v or add_zero_attn')
    if self.batch_first:
        query, key, value = (x.transpose(0, 1) for x in (query, key, value))
    biases = (
        self.in_proj_bias.chunk(3) if self.in_proj_bias is not None else
        (None, None, None))

    def heads(x: Tensor, weight: Tensor, bias) -> Tensor:
        """(L, B, E) -> (B, heads, L, head_dim)."""
        x = F.linear(x, weight, bias)
        return x.reshape(x.shape[0], x.shape[1], self.num_heads,
                         self.head_dim).permute(1, 2, 0, 3)

    q, k, v = (heads(
        x, w,
        b) for x, w, b in zip((query, key,
                               value), self.in_proj_weight.chunk(3), biases))
    weights = (q @ k.transpose(-2, -1) * self.head_dim**-0.5).softmax(-1)
    out = (weights @ v).permute(2, 0, 1, 3)
    out = out.reshape(out.shape[0], out.shape[1], self.embed_dim)
    out = F.linear(out, self.out_proj.weight, self.out_proj.bias)
    return (out.transpose(0, 1) if self.batch_first else out), None
