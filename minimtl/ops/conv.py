"""Conv1d, the fused Conv1d+ReLU and Conv1d+ReLU+MaxPool. Math: kernels/conv1d/__init__.py,
kernels/conv1d_relu/__init__.py, kernels/conv1d_relu_maxpool/__init__.py."""

from __future__ import annotations

from ..function import Function
from . import _checks

__all__ = ["Conv1d", "Conv1dRelu", "Conv1dReluMaxPool", "conv_out_length"]


def conv_out_length(length: int, k: int, stride: int, pad_left: int, pad_right: int,
                    dilation: int) -> int:
    """Lo = ⌊(L + pl + pr − dilation·(K − 1) − 1) / stride⌋ + 1."""
    return (length + pad_left + pad_right - dilation * (k - 1) - 1) // stride + 1


def _check(op, x, w, b, stride, padding_left, padding_right, dilation, channels_last,
           keep_transposed_x=False):
    _checks.positive(op, stride=stride, dilation=dilation)
    if padding_left < 0 or padding_right < 0:
        raise ValueError(f"{op}: padding must be >= 0, got ({padding_left}, {padding_right})")
    c_axis, l_axis = (2, 1) if channels_last else (1, 2)
    _checks.ndim(op, "x", x, 3, "(N, L, C)" if channels_last else "(N, C, L)")
    _checks.ndim(op, "weight", w, 3, "(O, C, K)")
    if x.shape[c_axis] != w.shape[1]:
        layout = " (channels-last: x is (N, L, C))" if channels_last else ""
        raise ValueError(f"{op}: x {x.shape} has {x.shape[c_axis]} channels but weight "
                         f"{w.shape} expects {w.shape[1]}{layout}")
    if b is not None and b.shape != (w.shape[0],):
        raise ValueError(f"{op}: bias {b.shape} does not match weight {w.shape}")
    if conv_out_length(x.shape[l_axis], w.shape[2], stride, padding_left, padding_right,
                       dilation) < 1:
        raise ValueError(
            f"{op}: window {w.shape[2]} (dilation {dilation}) is longer than the padded "
            f"input: x {x.shape}, padding ({padding_left}, {padding_right})")
    if keep_transposed_x and _transposed_view(x):
        xt, w, b = _checks.floats(op, x=x.swapaxes(1, 2), weight=w, bias=b)   # no copy
        return xt.swapaxes(1, 2), w, b
    return _checks.floats(op, x=x, weight=w, bias=b)


def _transposed_view(x) -> bool:
    """True when x is the swapaxes(1, 2) view of a C-contiguous array (a tower's input)."""
    return not x.flags.c_contiguous and x.swapaxes(1, 2).flags.c_contiguous


class Conv1d(Function):
    """y = conv1d(x, w, b): x (N, C, L), w (O, C, K), b (O,) or None -> (N, O, Lo);
    with ``channels_last`` x is (N, L, C) and y (N, Lo, O)."""

    kernel = "conv1d"

    @staticmethod
    def forward(ctx, x, w, b, *, stride=1, padding_left=0, padding_right=0, dilation=1,
                channels_last=False):
        x, w, b = _check("conv1d", x, w, b, stride, padding_left, padding_right, dilation,
                         channels_last)
        ctx.save(x, w)
        ctx.params = dict(stride=stride, padding_left=padding_left,
                          padding_right=padding_right, dilation=dilation,
                          channels_last=bool(channels_last))
        return ctx.k.fwd(x, w, b, **ctx.params)

    @staticmethod
    def backward(ctx, gy):
        x, w = ctx.saved
        return ctx.k.bwd(gy, x, w, **ctx.params, need_gx=ctx.needs_grad[0])  # gx, gw, gb


class Conv1dRelu(Function):
    """y = max(conv1d(x, w, b), 0) in one kernel (the article's Conv1D(activation='relu'))."""

    kernel = "conv1d_relu"

    @staticmethod
    def forward(ctx, x, w, b, *, stride=1, padding_left=0, padding_right=0, dilation=1,
                channels_last=False):
        x, w, b = _check("conv1d_relu", x, w, b, stride, padding_left, padding_right,
                         dilation, channels_last)
        ctx.params = dict(stride=stride, padding_left=padding_left,
                          padding_right=padding_right, dilation=dilation,
                          channels_last=bool(channels_last))
        y = ctx.k.fwd(x, w, b, **ctx.params)
        ctx.save(x, w, y)
        return y

    @staticmethod
    def backward(ctx, gy):
        x, w, y = ctx.saved
        return ctx.k.bwd(gy, x, w, y, **ctx.params, need_gx=ctx.needs_grad[0])


class Conv1dReluMaxPool(Function):
    """y = max_pool1d(max(conv1d(x, w, b), 0)) in one kernel (a conv block of the article's
    towers); returns y, keeps argmax for backward. Pool: window pool_size, stride
    pool_stride, padding pool_padding (max_pool1d's rules, on the conv's output length)."""

    kernel = "conv1d_relu_maxpool"

    @staticmethod
    def forward(ctx, x, w, b, *, stride=1, padding_left=0, padding_right=0, dilation=1,
                pool_size=2, pool_stride=2, pool_padding=0, channels_last=False):
        op = "conv1d_relu_maxpool"
        # x may stay a transposed view (the towers' first block): every backend reads it
        # (the CUDA kernels in place, through its strides; kernels/conv1d_relu_maxpool)
        x, w, b = _check(op, x, w, b, stride, padding_left, padding_right, dilation,
                         channels_last, keep_transposed_x=True)
        _checks.positive(op, pool_size=pool_size, pool_stride=pool_stride)
        if not 0 <= pool_padding <= pool_size // 2:
            raise ValueError(f"{op}: pool_padding must lie in [0, pool_size // 2 = "
                             f"{pool_size // 2}], got {pool_padding}")
        lc = conv_out_length(x.shape[1 if channels_last else 2], w.shape[2], stride,
                             padding_left, padding_right, dilation)
        if lc + 2 * pool_padding < pool_size:
            raise ValueError(f"{op}: pool window {pool_size} is longer than the padded "
                             f"convolution output ({lc} + 2·{pool_padding}) for x {x.shape}, "
                             f"weight {w.shape}")
        ctx.params = dict(stride=stride, padding_left=padding_left,
                          padding_right=padding_right, dilation=dilation,
                          pool_size=pool_size, pool_stride=pool_stride,
                          pool_padding=pool_padding, channels_last=bool(channels_last))
        y, argmax = ctx.k.fwd(x, w, b, **ctx.params)
        ctx.save(x, w, y, argmax)
        return y

    @staticmethod
    def backward(ctx, gy):
        x, w, y, argmax = ctx.saved
        return ctx.k.bwd(gy, x, w, y, argmax, **ctx.params, need_gx=ctx.needs_grad[0])
