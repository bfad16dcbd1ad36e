"""PyTorch kernels for mmcv's ``DeformConv2d`` (v1, without mask).

mmcv's ``DeformConv2dFunction`` (S2A-Net's AlignConv) calls these three
functions with the arguments it passes to the compiled ``mmcv._ext``.

Notation: N images, C input and O output channels, H x W input and
Ho x Wo output pixels (L = Ho * Wo), kH x kW kernel (K = kH * kW taps, tap
k = i * kW + j), G convolution groups, D deformable groups (each group of
C / D channels has its own offsets). Coordinates are in input pixels.

- ``input`` (N, C, H, W); ``weight`` (O, C / G, kH, kW);
  ``offset`` (N, D * 2 * K, Ho, Wo): for deformable group d and tap k,
  channel (d * K + k) * 2 holds the row shift dy and the next one the column
  shift dx; ``output`` (N, O, Ho, Wo).
- Tap (i, j) of output pixel (ho, wo) samples the input at
  ``y = ho * dH - padH + i * dilationH + dy`` and
  ``x = wo * dW - padW + j * dilationW + dx`` by bilinear interpolation of its
  four neighbour pixels, as mmcv's ``deformable_im2col_bilinear``: a
  neighbour outside the image counts 0, and the sample is 0 unless
  ``-1 < y < H`` and ``-1 < x < W``. These samples are the columns
  (N, C * K, L) of an ordinary grouped convolution.

``deform_conv_forward`` writes ``output = weight x columns``.
``deform_conv_backward_input`` adds to ``gradInput`` (N, C, H, W) the
gradient w.r.t. the input (the column gradient ``weight^T x gradOutput``
scattered back to the four neighbours with the bilinear weights) and writes
into ``gradOffset`` (offset's shape) the gradient w.r.t. the offsets (the
column gradient times the derivative of its bilinear sample w.r.t. y and x,
summed over the deformable group's channels).
``deform_conv_backward_parameters`` adds ``scale * gradOutput x columns^T``
to ``gradWeight`` (weight's shape).

Images are processed ``im2col_step`` at a time, as in mmcv, which bounds the
memory of the columns. Computation is in float32 (float64 stays float64);
results are written back in the tensors' dtype. mmcv's ``columns`` and
``ones`` buffers are unused, as in its C++ (which only rebinds them locally).
"""
import torch

__all__ = [
    'deform_conv_forward', 'deform_conv_backward_input',
    'deform_conv_backward_parameters'
]


class _Sampler:
    """The bilinear samples of a chunk of B images, from its offsets
    (B, D * 2 * K, Ho, Wo), for input planes (B, D, C / D, H * W).

    For each neighbour (a, b) of a sample (pixel (y0 + a, x0 + b), y0 and x0
    the floors of y and x) it keeps the neighbour's pixel index in its
    plane and bilinear weight, each (B, D, 1, K * L) so that they broadcast
    over a group's channels, and the weight's derivatives w.r.t. y and x,
    (B, D, K * L). A neighbour outside the image, or of a sample outside
    (-1, H) x (-1, W), has weight and derivatives 0 (and reads pixel 0).
    """

    def __init__(self, offset, height, width, kH, kW, dH, dW, padH, padW,
                 dilationH, dilationW, deformable_group):
        B, _, out_h, out_w = offset.shape
        D, K, dev = deformable_group, kH * kW, offset.device
        offset = offset.view(B, D, K, 2, out_h * out_w)
        # integer position (K, L) of each tap, before its offset
        tap_y = torch.arange(kH, device=dev).repeat_interleave(kW) * dilationH
        tap_x = torch.arange(kW, device=dev).repeat(kH) * dilationW
        out_y = torch.arange(out_h, device=dev) * dH - padH
        out_x = torch.arange(out_w, device=dev) * dW - padW
        grid_y = (tap_y[:, None, None] + out_y[:, None]).expand(K, -1, out_w)
        grid_x = (tap_x[:, None, None] + out_x).expand(K, out_h, -1)
        # offset added to the integer position, as mmcv does: (B, D, K, L)
        y = grid_y.reshape(K, -1) + offset[:, :, :, 0]
        x = grid_x.reshape(K, -1) + offset[:, :, :, 1]
        inside = (y > -1) & (y < height) & (x > -1) & (x < width)
        y0, x0 = y.floor(), x.floor()
        ly, lx = y - y0, x - x0
        y0, x0 = y0.long(), x0.long()
        # per neighbour row a (column b): weight factor, whether in the image
        wy, wx = (1 - ly, ly), (1 - lx, lx)
        in_y = (y0 >= 0, y0 + 1 <= height - 1)
        in_x = (x0 >= 0, x0 + 1 <= width - 1)
        self.index, self.weight, self.d_dy, self.d_dx = [], [], [], []
        for a in (0, 1):
            for b in (0, 1):
                valid = inside & in_y[a] & in_x[b]
                pixel = torch.where(valid, (y0 + a) * width + x0 + b, 0)
                self.index.append(pixel.view(B, D, 1, -1))
                self.weight.append((wy[a] * wx[b] * valid).view(B, D, 1, -1))
                self.d_dy.append(((2 * a - 1) * wx[b] * valid).view(B, D, -1))
                self.d_dx.append(((2 * b - 1) * wy[a] * valid).view(B, D, -1))
        self.samples = (B, D, K, out_h * out_w)
        self.offset_shape = (B, D * K * 2, out_h, out_w)

    def _neighbours(self, planes):
        """Each neighbour's values (B, D, C / D, K * L) in ``planes``,
        gathered into one reused buffer."""
        B, D, Cd = planes.shape[:3]
        value = planes.new_empty(B, D, Cd, self.index[0].shape[-1])
        for index in self.index:
            yield torch.gather(planes, 3, index.expand_as(value), out=value)

    def columns(self, planes):
        """Bilinear samples (B, D, C / D, K * L) of ``planes``."""
        neighbours = zip(self._neighbours(planes), self.weight)
        cols = torch.mul(*next(neighbours))
        for value, weight in neighbours:
            cols.addcmul_(value, weight)  # in place: no new 4x buffers
        return cols

    def scatter(self, grad_cols, num_pixels):
        """Adjoint of ``columns``: the column gradient (B, D, C / D, K * L)
        added into planes (B, D, C / D, num_pixels) at the neighbours."""
        grad_planes = grad_cols.new_zeros(*grad_cols.shape[:3], num_pixels)
        term = torch.empty_like(grad_cols)
        for index, weight in zip(self.index, self.weight):
            torch.mul(grad_cols, weight, out=term)
            grad_planes.scatter_add_(3, index.expand_as(term), term)
        return grad_planes

    def offset_grad(self, planes, grad_cols):
        """Gradient w.r.t. the offsets (B, D * 2 * K, Ho, Wo): per sample,
        the sum over the group's channels of column gradient x derivative of
        the sample w.r.t. y (x), i.e. neighbour values x weight derivatives.
        """
        grad_y = grad_x = 0
        for value, d_dy, d_dx in zip(
                self._neighbours(planes), self.d_dy, self.d_dx):
            value_grad = value.mul_(grad_cols).sum(2)
            grad_y = grad_y + value_grad * d_dy
            grad_x = grad_x + value_grad * d_dx
        # (B, D, K, (dy, dx), L): the offsets' channel order
        grad = torch.stack(
            (grad_y.view(self.samples), grad_x.view(self.samples)), 3)
        return grad.view(self.offset_shape)


def _compute_dtype(tensor):
    """float32 for half precision, else the tensor's own float dtype."""
    return torch.promote_types(tensor.dtype, torch.float32)


def _chunk_samplers(input, offset, dtype, im2col_step, kH, kW, dH, dW, padH,
                    padW, dilationH, dilationW, deformable_group):
    """For each chunk of ``im2col_step`` images (mmcv's batching of the
    columns): its slice, its sampler and its input as planes
    (B, D, C / D, H * W) in the compute dtype."""
    num, _, H, W = input.shape
    for start in range(0, num, im2col_step):
        chunk = slice(start, min(start + im2col_step, num))
        sampler = _Sampler(offset[chunk].to(dtype), H, W, kH, kW, dH, dW, padH,
                           padW, dilationH, dilationW, deformable_group)
        planes = input[chunk].to(dtype).reshape(chunk.stop - start,
                                                deformable_group, -1, H * W)
        yield chunk, sampler, planes


def _weight_matrices(weight, dtype, group):
    """(O, C / G, kH, kW) -> (G, O / G, C / G * K): rows ordered (c, k) as
    the columns (B, C * K, L) are."""
    return weight.to(dtype).reshape(group, weight.shape[0] // group, -1)


def deform_conv_forward(input, weight, offset, output, columns, ones, kW, kH,
                        dW, dH, padW, padH, dilationW, dilationH, group,
                        deformable_group, im2col_step):
    """Writes the deformable convolution of ``input`` into ``output``."""
    dtype = _compute_dtype(input)
    weight = _weight_matrices(weight, dtype, group)
    for chunk, sampler, planes in _chunk_samplers(input, offset, dtype,
                                                  im2col_step, kH, kW, dH, dW,
                                                  padH, padW, dilationH,
                                                  dilationW, deformable_group):
        B, _, _, L = sampler.samples
        # columns as per-group matrices (B, G, C / G * K, L)
        cols = sampler.columns(planes).view(B, group, -1, L)
        output[chunk] = torch.matmul(weight, cols).view_as(output[chunk])


def deform_conv_backward_input(input, offset, gradOutput, gradInput,
                               gradOffset, weight, columns, kW, kH, dW, dH,
                               padW, padH, dilationW, dilationH, group,
                               deformable_group, im2col_step):
    """Adds the input gradient to ``gradInput``; writes the offset gradient
    into ``gradOffset``."""
    dtype = _compute_dtype(input)
    weight_t = _weight_matrices(weight, dtype, group).transpose(1, 2)
    for chunk, sampler, planes in _chunk_samplers(input, offset, dtype,
                                                  im2col_step, kH, kW, dH, dW,
                                                  padH, padW, dilationH,
                                                  dilationW, deformable_group):
        B, _, _, L = sampler.samples
        grad_out = gradOutput[chunk].to(dtype).reshape(B, group, -1, L)
        # column gradient weight^T x gradOutput, viewed as the planes
        grad_cols = torch.matmul(weight_t, grad_out)
        grad_cols = grad_cols.view(*planes.shape[:3], -1)
        gradOffset[chunk] = sampler.offset_grad(planes, grad_cols)
        grad_planes = sampler.scatter(grad_cols, planes.shape[3])
        gradInput[chunk] += grad_planes.view_as(gradInput[chunk])


def deform_conv_backward_parameters(input, offset, gradOutput, gradWeight,
                                    columns, ones, kW, kH, dW, dH, padW, padH,
                                    dilationW, dilationH, group,
                                    deformable_group, scale, im2col_step):
    """Adds ``scale`` times the weight gradient to ``gradWeight``."""
    dtype = _compute_dtype(input)
    grad = 0
    for chunk, sampler, planes in _chunk_samplers(input, offset, dtype,
                                                  im2col_step, kH, kW, dH, dW,
                                                  padH, padW, dilationH,
                                                  dilationW, deformable_group):
        B, _, _, L = sampler.samples
        cols = sampler.columns(planes).view(B, group, -1, L)
        grad_out = gradOutput[chunk].to(dtype).reshape(B, group, -1, L)
        # sum over images of gradOutput x columns^T: (G, O / G, C / G * K)
        for image in range(B):
            cols_t = cols[image].transpose(1, 2)
            grad = grad + torch.matmul(grad_out[image], cols_t)
    gradWeight += scale * grad.view_as(gradWeight)
