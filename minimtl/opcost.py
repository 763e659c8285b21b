"""What one op call costs in arithmetic and memory traffic, and what this machine can do:
the profiler's roofline (minimtl/profiler/report.py).

FLOPs, by the benchmark runner's convention (minimtl/bench/cases.py): a multiply-add is 2.

- conv1d (and its fused forms): 2·N·O·Lc·C·K for the products (Lc the convolution's output
  length), + N·O·Lc for the bias (and the ReLU); backward: the weight product always, the
  input product when x needs a gradient, + N·O·Lc for the bias gradient.
- linear x (N, D), w (O, D): 2·N·D·O + N·O; matmul (…, n, k) @ (…, k, m): 2·batch·n·k·m;
  backward: one product of the same size per operand that needs a gradient.
- rnn / lstm / gru with G gates (1, 4, 3): 2·N·T·G·H·(D + H) for the two products a step
  (the gate arithmetic is not counted); backward: twice that.
- pooling: one comparison or addition per window element, N·C·Lo·K (max backward: N·C·Lo).
- softmax family and losses: a few operations per element (an exp or log counts as one);
  these ops are bound by memory traffic, where the count matters little.
- elementwise ops: one per output element; reductions: one per input element.

Bytes: the arrays an op must read and write at least once: its tensor inputs and outputs
forward; the upstream gradients, the inputs again and the gradients it returns backward.
Saved extras (argmax, gates) and scratch space are not counted, so GB/s is a lower bound.
"""

from __future__ import annotations

import contextlib
import math
import time

import numpy as np

__all__ = ["call_cost", "measure_peaks"]

_GATES = {"rnn": 1, "lstm": 4, "gru": 3}
_ELEMENTWISE = {"add", "sub", "mul", "div", "neg", "pow", "exp", "log", "sqrt", "tanh",
                "sigmoid", "relu", "where"}
_REDUCE = {"sum", "mean", "max"}
#: operations per element (forward, backward) of the row-wise and elementwise heavy ops
_PER_ELEMENT = {"softmax": (4, 3), "log_softmax": (4, 3), "cross_entropy": (4, 3),
                "soft_cross_entropy": (6, 4), "bce_with_logits": (6, 4), "bce": (5, 4),
                "mse": (2, 3)}


def _size(shape) -> int:
    return math.prod(shape) if shape is not None else 0


def _conv_flops(name, shapes, out_shapes, params) -> tuple[int, int, int]:
    """(products, per-output extras, conv outputs) of a conv1d-family forward."""
    (n, *_), (o, c, k) = shapes[0], shapes[1]
    if name == "conv1d_relu_maxpool":
        from .ops.conv import conv_out_length

        length = shapes[0][1 if params.get("channels_last") else 2]
        lc = conv_out_length(length, k, params.get("stride", 1),
                             params.get("padding_left", 0), params.get("padding_right", 0),
                             params.get("dilation", 1))
        outs = n * o * lc
    else:
        outs = _size(out_shapes[0])
    return 2 * outs * c * k, outs, outs


def call_cost(name: str, shapes: tuple, out_shapes: tuple, params: dict,
              needs_grad: tuple) -> tuple[int | None, int | None]:
    """(forward FLOPs, backward FLOPs) of one call of op ``name`` (``Function.op_name``)
    with input ``shapes`` (None for a non-tensor input), output shapes, the keyword
    ``params`` it was applied with and ``needs_grad`` per input; None where not counted."""
    if name in ("conv1d", "conv1d_relu", "conv1d_relu_maxpool"):
        products, outs, _ = _conv_flops(name, shapes, out_shapes, params)
        extra = outs * (1 + (name != "conv1d"))
        if name == "conv1d_relu_maxpool":
            extra += _size(out_shapes[0]) * params.get("pool_size", 2)
        bwd = products * (1 + bool(needs_grad[0])) + outs * (1 + (name != "conv1d"))
        return products + extra, bwd
    if name == "linear":
        (n, d), (o, _) = shapes[0], shapes[1]
        fwd = 2 * n * d * o + (n * o if shapes[2] is not None else 0)
        bwd = 2 * n * d * o * (bool(needs_grad[0]) + bool(needs_grad[1]))
        return fwd, bwd + (n * o if len(needs_grad) > 2 and needs_grad[2] else 0)
    if name == "matmul":
        k = shapes[0][-1]
        fwd = 2 * _size(out_shapes[0]) * k
        return fwd, fwd * (bool(needs_grad[0]) + bool(needs_grad[1]))
    if name in _GATES:
        n, t, d = shapes[0]
        h = shapes[1][-1]
        fwd = 2 * n * t * _GATES[name] * h * (d + h)
        return fwd, 2 * fwd
    if name in ("maxpool1d", "avgpool1d"):
        fwd = _size(out_shapes[0]) * params["kernel_size"]
        return fwd, fwd if name == "avgpool1d" else _size(out_shapes[0])
    if name in _PER_ELEMENT:
        f, b = _PER_ELEMENT[name]
        return f * _size(shapes[0]), b * _size(shapes[0])
    if name in _ELEMENTWISE:
        return _size(out_shapes[0]), 2 * _size(out_shapes[0])
    if name in _REDUCE:
        return _size(shapes[0]), 0
    return None, None


_measured: dict = {}      # (device, dtype) -> {"gflops", "gbps"}


def measure_peaks(device: str = "cpu", dtype: str = "float32", *, sizes=(256, 512, 1024),
                  copy_mib: int = 64, repeats: int = 3) -> dict[str, float]:
    """The matmul peak (GFLOP/s) and copy bandwidth (GB/s, read + write) of ``device``
    (``cpu`` or ``cuda``) for ``dtype``, measured once per process (a few tenths of a
    second) and remembered. The best of ``repeats`` calls of each size counts: a peak, not
    a typical rate, is what the roofline compares against."""
    key = (device, dtype)
    if key in _measured:
        return _measured[key]
    if device == "cuda":
        import cupy as xp

        def sync():
            xp.cuda.get_current_stream().synchronize()
    else:
        xp = np

        def sync():
            return None
    with _all_cores(device):
        _measured[key] = _peaks(xp, sync, dtype, sizes, copy_mib, repeats)
    return _measured[key]


def _all_cores(device: str):
    """On the CPU, BLAS on every core for the block (``set_num_threads`` may hold it to one
    thread under the convolutions' chunk threads; the peak is the machine's)."""
    if device == "cpu":
        try:
            from threadpoolctl import threadpool_limits
        except ImportError:
            return contextlib.nullcontext()
        from .threads import cores

        return threadpool_limits(limits=cores(), user_api="blas")
    return contextlib.nullcontext()


def _peaks(xp, sync, dtype, sizes, copy_mib, repeats) -> dict[str, float]:
    rng = np.random.default_rng(0)
    best = 0.0
    for n in sizes:
        a = xp.asarray(rng.standard_normal((n, n)).astype(dtype))
        b = xp.asarray(rng.standard_normal((n, n)).astype(dtype))
        xp.matmul(a, b)
        for _ in range(repeats):
            sync()
            t0 = time.perf_counter()
            xp.matmul(a, b)
            sync()
            best = max(best, 2.0 * n**3 / (time.perf_counter() - t0) / 1e9)
    src = xp.ones(copy_mib * 2**20 // np.dtype(dtype).itemsize, dtype=dtype)
    dst = xp.empty_like(src)
    xp.copyto(dst, src)
    bw = 0.0
    for _ in range(repeats + 2):
        sync()
        t0 = time.perf_counter()
        xp.copyto(dst, src)
        sync()
        bw = max(bw, 2.0 * src.nbytes / (time.perf_counter() - t0) / 1e9)
    return {"gflops": best, "gbps": bw}
