"""conv1d on the GPU: SPEC's matrix form as implicit GEMMs with shared-memory tiles.

Kernels (each thread computes an 8 x 8 register tile of outputs from operand tiles that
the block stages in shared memory, a chunk of the reduction at a time):
- ``conv1d_fwd``: y = W2·X̂ + b (then ReLU for conv1d_relu); the X̂ tile is gathered from
  x on the fly (zero padding by bounds checks), never materialised.
- ``conv1d_bwd_data``: gx = W3·Ĝ with W3[c, (o,k)] = w[o,c,k] and
  Ĝ[(o,k), (n,j)] = gy[n,o,t] where t·S+k·d = j+Pl: each output gx[n,c,j] gathers the
  taps that read x[n,c,j] (no col2im, no atomics).
- ``conv1d_bwd_weight``: gw = G·X̂ᵀ and gb = G·1; blockIdx.z splits the long reduction over
  (n, t) into slices whose partial sums go to a workspace. In the same launch, the last
  block of each output tile to finish (it learns so from an atomic ticket counter per tile)
  adds the tile's slices up in a fixed order, so the result is deterministic whichever
  block finishes last, and no second kernel is launched. The counters (``tickets``) are
  one small int buffer per device, zeroed once and put back to 0 by the kernel itself.
Index bookkeeping (n, t from a column, c, k from a reduction row) is done once per block
or chunk into small shared tables, so the tile loads are gathers without divisions.
The 8 x 8 register tiles halve the shared-memory loads per multiply-add of the earlier
4 x 4 tiles (timings: benchmarks/NOTES.md, items 8 and 26). Channels-last arrays go through
transposes (``swap_layout``): the network runs channels-first on the GPU.
The CUDA C is ``SOURCE`` in kernels/conv1d/cuda_source.py (after the tiles it shares with
the fused block, kernels/_gemm_cuda.py); this file launches it.
math: see SPEC (kernels/conv1d/__init__.py).
"""

from __future__ import annotations

from kernels._cuda import blocks, cupy, kernel, launch_grid
from kernels._gemm_cuda import i32, tile, x_strides
from kernels._shapes import conv_out_length, swap_layout
from kernels.conv1d.cuda_source import KERNELS, SOURCE

__all__ = ["fwd", "bwd", "forward", "backward", "tickets", "SOURCE", "KERNELS"]

_TRW = 16               # reduction chunk of conv1d_bwd_weight (TRW in SOURCE)
_TARGET_BLOCKS = 1024   # conv1d_bwd_weight: about eight 64-thread blocks per H100/H200 SM
_MIN_TICKETS = 256      # counters of the first tickets buffer (a tile each)

_tickets: dict[tuple[str, int], object] = {}    # (array module, device) -> int32 counters
_retired: list = []     # outgrown ticket buffers: a captured CUDA graph may still use them


def tickets(cp, tiles):
    """conv1d_bwd_weight's ticket counters (int32, at least ``tiles``, all 0 between
    launches) for the current device: allocated and zeroed on first use, then reused by
    every launch and never freed; each launch's last block of a tile puts its counter back
    to 0, so no launch needs a memset. Launches on one stream run one after another, so
    they can share the counters; launches that may overlap on concurrent streams would
    each need counters of their own. A buffer too small for ``tiles`` is replaced by one
    twice as large (the old one kept alive: a captured graph may still point at it). The
    first call must not be inside a stream capture (its memset would run only at replay);
    minimtl's graph path runs its step eagerly before capturing it."""
    key = (cp.__name__, int(cp.cuda.Device().id))   # numpy on the host emulator
    buf = _tickets.get(key)
    if buf is None or buf.size < tiles:
        size = _MIN_TICKETS if buf is None else buf.size
        while size < tiles:
            size *= 2
        if buf is not None:
            _retired.append(buf)
        buf = _tickets[key] = cp.zeros(size, dtype=cp.int32)
    return buf


def _check_size(N, C, L, O, Lo):
    if N * max(L, Lo) * max(C, O) >= 2**31:
        raise ValueError(f"conv1d (cupy): N={N}, C={C}, L={L}, O={O} too large for int32 "
                         "offsets")


def forward(x, w, b, stride, padding_left, padding_right, dilation, relu):
    """conv1d (then ReLU when ``relu``) on the GPU; shared with conv1d_relu."""
    cp = cupy()
    x = cp.ascontiguousarray(x)
    w = cp.ascontiguousarray(w, dtype=x.dtype)
    N, C, L = x.shape
    O, _, K = w.shape
    Lo = conv_out_length(L, K, stride, padding_left, padding_right, dilation)
    _check_size(N, C, L, O, Lo)
    y = cp.empty((N, O, Lo), dtype=x.dtype)
    if y.size == 0:
        return y
    bias = y if b is None else cp.ascontiguousarray(b, dtype=x.dtype)  # y: unread stand-in
    tm, tp, threads = tile(O)
    fn = kernel(SOURCE, KERNELS, "conv1d_fwd", x.dtype)
    launch_grid(fn, (blocks(N * Lo, tp), blocks(O, tm)), (threads,),
                (x, w, bias, y, *i32(N, C, L, O, K, Lo, stride, padding_left, dilation,
                                     b is not None, relu, tm, tp)))
    return y


def backward(gy, x, w, y, stride, padding_left, padding_right, dilation, need_gx=True):
    """conv1d's (gx, gw, gb) for gy, masked by y > 0 when y is given (conv1d_relu); gx is
    None (its kernel not launched) when not ``need_gx``."""
    cp = cupy()
    xbuf, xs = x_strides(cp, x)             # read in place when x is a transposed view
    w = cp.ascontiguousarray(w, dtype=x.dtype)
    gy = cp.ascontiguousarray(gy, dtype=x.dtype)
    relu = y is not None
    mask = cp.ascontiguousarray(y, dtype=x.dtype) if relu else gy   # gy: unread stand-in
    N, C, L = x.shape
    O, _, K = w.shape
    Lo = gy.shape[2]
    R = C * K
    P = N * Lo
    _check_size(N, C, L, O, Lo)
    if P == 0:
        return (cp.zeros((N, C, L), dtype=x.dtype) if need_gx else None,
                cp.zeros((O, C, K), dtype=x.dtype), cp.zeros((O,), dtype=x.dtype))
    gx = cp.empty((N, C, L), dtype=x.dtype) if need_gx else None
    gw = cp.empty((O, C, K), dtype=x.dtype)
    gb = cp.empty((O,), dtype=x.dtype)
    if need_gx:
        # gx: gather of the taps (one implicit GEMM over the reduction (o, k))
        tm, tp, threads = tile(C)
        fn = kernel(SOURCE, KERNELS, "conv1d_bwd_data", x.dtype)
        launch_grid(fn, (blocks(N * L, tp), blocks(C, tm)), (threads,),
                    (gy, mask, w, gx, *i32(N, C, L, O, K, Lo, stride, padding_left,
                                           dilation, relu, tm, tp)))
    # gw, gb: slices of the (n, t) reduction per block, each tile's last block adding the
    # tile's slices in a fixed order
    tiles = blocks(R, 64) * blocks(O, 64)
    per_block = -(-P // max(1, _TARGET_BLOCKS // tiles))
    pb = max(8 * _TRW, -(-per_block // _TRW) * _TRW)            # a multiple of the chunk
    splits = -(-P // pb)
    part = cp.empty((splits, O * R + O), dtype=x.dtype)
    fn = kernel(SOURCE, KERNELS, "conv1d_bwd_weight", x.dtype)
    launch_grid(fn, (blocks(R, 64), blocks(O, 64), splits), (64,),
                (gy, mask, xbuf, part, gw, gb, tickets(cp, tiles),
                 *i32(N, C, L, O, K, Lo, stride, padding_left, dilation, relu, pb, *xs)))
    return gx, gw, gb


def fwd(x, w, b, *, stride: int, padding_left: int, padding_right: int, dilation: int,
        channels_last: bool = False):
    """y (N, O, Lo) = conv1d(x (N, C, L), w (O, C, K), b (O,) | None);
    channels-last (N, L, C) → (N, Lo, O) through transposes."""
    p = (int(stride), int(padding_left), int(padding_right), int(dilation))
    if channels_last:
        return swap_layout(forward(swap_layout(x), w, b, *p, False))
    return forward(x, w, b, *p, False)


def bwd(gy, x, w, *, stride: int, padding_left: int, padding_right: int, dilation: int,
        need_gx: bool = True, channels_last: bool = False):
    """(gx (N, C, L) or None, gw (O, C, K), gb (O,)) for the upstream gradient gy (N, O, Lo);
    channels-last through transposes."""
    p = (int(stride), int(padding_left), int(padding_right), int(dilation), bool(need_gx))
    if channels_last:
        gx, gw, gb = backward(swap_layout(gy), swap_layout(x), w, None, *p)
        return (None if gx is None else swap_layout(gx)), gw, gb
    return backward(gy, x, w, None, *p)
