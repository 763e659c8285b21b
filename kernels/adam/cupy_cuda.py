"""Adam's update as CUDA kernels: one thread per element, one launch per parameter
(``update``) or one launch for all the parameters of a step (``update_many``).

The reference's passes, run with CuPy, launch thirteen elementwise kernels per parameter
(about 230 launches a step for the article's network, each costing host time); ``update``
is one. Every element gets the reference's operations in its order, each rounded to
nearest on its own (the ``__f*_rn`` / ``__d*_rn`` intrinsics: no contraction into FMA), so
the result is bitwise the reference's. Layouts the kernel cannot write through a flat view
take the reference's passes with CuPy. Math: see SPEC.

``update_many`` is a multi-tensor launch: the addresses of every p, g, m, v, their sizes
and the first block of each tensor are one small table of int64 in device memory; block b
finds its tensor by a binary search of the first blocks and updates one chunk of 256
elements of it with the same per-element code as ``update``. The table is uploaded (one
host-to-device copy) only when the set of addresses and sizes changes: it is cached by
that tuple (the last ``TABLES_KEPT`` sets), and cupy's memory pool usually hands the same
addresses back every step, so a steady training loop uploads nothing.

With ``counter`` (a device int64 array of one element holding the step t of the previous
update), a one-thread kernel first advances the counter and writes c2 and step for the new
t into a small device buffer that the update kernel reads: no host scalar of the step is
baked into the launches, so a CUDA graph that captured them advances t on every replay.
The bias terms 1 − β1ᵗ and 1 − β2ᵗ come from a table computed once on the host with
Python's ``**`` (uploaded once per (β1, β2)), and the kernel finishes them with the
correctly rounded double ``sqrt`` and division, as Python does, then rounds to the dtype:
bitwise the host's scalars for every t the table covers (all t when both corrections reach
exactly 1 within ``BIAS_STEPS`` steps, as for β2 = 0.999: from then on the last entry is
exact); beyond it, the device's ``pow``, which may differ from Python's in the last bit of
the double. lr is a kernel argument: a captured graph keeps the lr it was captured with.
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np

from kernels._cuda import blocks, cupy, kernel, launch, launch_grid
from kernels.adam.reference import passes, step_scalars

__all__ = ["update", "update_many", "bias_table", "SOURCE", "KERNELS", "THREADS",
           "TABLES_KEPT", "BIAS_STEPS"]

SOURCE = r"""
__device__ __forceinline__ float mul_rn(float a, float b) { return __fmul_rn(a, b); }
__device__ __forceinline__ double mul_rn(double a, double b) { return __dmul_rn(a, b); }
__device__ __forceinline__ float add_rn(float a, float b) { return __fadd_rn(a, b); }
__device__ __forceinline__ double add_rn(double a, double b) { return __dadd_rn(a, b); }
__device__ __forceinline__ float sub_rn(float a, float b) { return __fsub_rn(a, b); }
__device__ __forceinline__ double sub_rn(double a, double b) { return __dsub_rn(a, b); }
__device__ __forceinline__ float div_rn(float a, float b) { return __fdiv_rn(a, b); }
__device__ __forceinline__ double div_rn(double a, double b) { return __ddiv_rn(a, b); }
__device__ __forceinline__ float sqrt_rn(float a) { return __fsqrt_rn(a); }
__device__ __forceinline__ double sqrt_rn(double a) { return __dsqrt_rn(a); }

// element i of one parameter: the reference's operations in its order
template <typename T>
__device__ __forceinline__ void adam_element(T* __restrict__ p, const T* __restrict__ g,
                                             T* __restrict__ m, T* __restrict__ v,
                                             long long i, T one_m_b1, T b1, T one_m_b2,
                                             T b2, T c2, T eps, T step)
{
    T gi = g[i];
    T mi = add_rn(mul_rn(m[i], b1), mul_rn(gi, one_m_b1));             // b1*m + (1-b1)*g
    T vi = add_rn(mul_rn(v[i], b2), mul_rn(mul_rn(gi, gi), one_m_b2)); // b2*v + (1-b2)*g*g
    m[i] = mi;
    v[i] = vi;
    T d = add_rn(div_rn(sqrt_rn(vi), c2), eps);                        // sqrt(v)/c2 + eps
    p[i] = sub_rn(p[i], mul_rn(div_rn(mi, d), step));                  // p - m/d * step
}

template <typename T>
__global__ void adam_update(T* __restrict__ p, const T* __restrict__ g, T* __restrict__ m,
                            T* __restrict__ v, long long n, T one_m_b1, T b1, T one_m_b2,
                            T b2, T c2, T eps, T step)
{
    // thread i -> element i of the flat parameter (and of its g, m, v)
    long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    adam_element(p, g, m, v, i, one_m_b1, b1, one_m_b2, b2, c2, eps, step);
}

// One block of a multi-tensor launch over k tensors. table: [4j .. 4j+3] the addresses of
// p, g, m, v of tensor j; [4k + j] its size; [5k + j] its first block ([6k] the total).
template <typename T>
__device__ __forceinline__ void adam_many_block(const long long* __restrict__ table, int k,
                                                T one_m_b1, T b1, T one_m_b2, T b2, T c2,
                                                T eps, T step)
{
    const long long* size = table + 4 * (long long)k;
    const long long* first = table + 5 * (long long)k;
    const long long b = blockIdx.x;
    int lo = 0, hi = k - 1;                  // the tensor j with first[j] <= b < first[j+1]
    while (lo < hi) {
        const int mid = (lo + hi + 1) / 2;
        if (first[mid] <= b) lo = mid; else hi = mid - 1;
    }
    const long long i = (b - first[lo]) * blockDim.x + threadIdx.x;
    if (i >= size[lo]) return;
    const long long* a = table + 4 * (long long)lo;
    adam_element(reinterpret_cast<T*>(a[0]), reinterpret_cast<const T*>(a[1]),
                 reinterpret_cast<T*>(a[2]), reinterpret_cast<T*>(a[3]), i, one_m_b1, b1,
                 one_m_b2, b2, c2, eps, step);
}

template <typename T>
__global__ void adam_update_many(const long long* __restrict__ table, int k, T one_m_b1,
                                 T b1, T one_m_b2, T b2, T c2, T eps, T step)
{
    adam_many_block(table, k, one_m_b1, b1, one_m_b2, b2, c2, eps, step);
}

// the same, with c2 and step read from the device (written by adam_step_scalars)
template <typename T>
__global__ void adam_update_many_dev(const long long* __restrict__ table, int k, T one_m_b1,
                                     T b1, T one_m_b2, T b2, T eps,
                                     const T* __restrict__ scalars)
{
    adam_many_block(table, k, one_m_b1, b1, one_m_b2, b2, scalars[0], eps, scalars[1]);
}

// One thread: t <- counter + 1, stored back; scalars = (sqrt(1 - b2^t), lr / (1 - b1^t))
// rounded to T. bias[2(t-1)], bias[2(t-1)+1] = 1 - b1^t, 1 - b2^t for t <= n_bias (from the
// host); past it the last entry if exact_tail (both are exactly 1 there), else pow.
template <typename T>
__global__ void adam_step_scalars(long long* __restrict__ counter,
                                  const double* __restrict__ bias, long long n_bias,
                                  int exact_tail, double b1, double b2, double lr,
                                  T* __restrict__ scalars)
{
    if (blockIdx.x != 0 || threadIdx.x != 0) return;
    const long long t = counter[0] + 1;
    counter[0] = t;
    double d1, d2;
    if (t <= n_bias || exact_tail) {
        const long long j = 2 * ((t <= n_bias ? t : n_bias) - 1);
        d1 = bias[j];
        d2 = bias[j + 1];
    } else {
        d1 = __dsub_rn(1.0, pow(b1, (double)t));
        d2 = __dsub_rn(1.0, pow(b2, (double)t));
    }
    scalars[0] = (T)__dsqrt_rn(d2);
    scalars[1] = (T)__ddiv_rn(lr, d1);
}
"""

KERNELS = ("adam_update", "adam_update_many", "adam_update_many_dev", "adam_step_scalars")

#: threads per block, and elements per block of a multi-tensor launch
THREADS = 256
#: pointer tables kept on the device (each a few hundred bytes), most recent last
TABLES_KEPT = 8
#: steps covered by the host-computed bias table of the device step (16 bytes each)
BIAS_STEPS = 1 << 16

_tables: OrderedDict[tuple, tuple] = OrderedDict()     # key -> (device table, k, blocks)
_bias: dict[tuple[float, float], tuple] = {}            # (b1, b2) -> (device, n, exact)
_scalar_buffers: dict[tuple, object] = {}               # (counter address, dtype) -> buffer


def _constants(t, b1: float, b2: float) -> tuple:
    return (t(1 - b1), t(b1), t(1 - b2), t(b2))


def update(p, g, m, v, *, b1: float, b2: float, c2: float, eps: float, step: float) -> None:
    """One Adam step in place on the cupy arrays p, m, v (g read); c2 = √(1 − β2ᵗ),
    step = lr/(1 − β1ᵗ). The scalars are cast to p's dtype first, as NumPy and CuPy do
    with Python floats."""
    cp = cupy()
    if not (p.flags.c_contiguous and m.flags.c_contiguous and v.flags.c_contiguous):
        passes(cp, p, g, m, v, b1=b1, b2=b2, c2=c2, eps=eps, step=step)
        return
    t = np.dtype(p.dtype).type
    g = cp.ascontiguousarray(g, dtype=p.dtype)
    fn = kernel(SOURCE, KERNELS, "adam_update", p.dtype)
    launch(fn, p.size, (p, g, m, v, np.int64(p.size), *_constants(t, b1, b2), t(c2), t(eps),
                        t(step)), threads=THREADS)


def _address(a) -> int:
    """The device address of a cupy array's first element (of a NumPy array's, on the host
    emulator, whose device arrays are NumPy's)."""
    data = a.data
    return data.ptr if hasattr(data, "ptr") else a.ctypes.data


def _table(cp, arrays) -> tuple:
    """(device table, k, blocks) for the non-empty (p, g, m, v) of ``arrays``: cached by
    their addresses and sizes, uploaded in one host-to-device copy on a miss."""
    key = tuple((tuple(_address(a) for a in quad), quad[0].size) for quad in arrays)
    hit = _tables.get(key)
    if hit is not None:
        _tables.move_to_end(key)
        return hit
    live = [(addresses, n) for addresses, n in key if n > 0]
    k = len(live)
    host = np.empty(6 * k + 1, np.int64)
    first = 0
    for j, (addresses, n) in enumerate(live):
        host[4 * j:4 * j + 4] = addresses
        host[4 * k + j] = n
        host[5 * k + j] = first
        first += blocks(n, THREADS)
    host[6 * k] = first
    entry = (cp.asarray(host), k, first)
    _tables[key] = entry
    if len(_tables) > TABLES_KEPT:
        _tables.popitem(last=False)
    return entry


def bias_table(b1: float, b2: float, steps: int = BIAS_STEPS) -> tuple[np.ndarray, bool]:
    """(1 − β1ᵗ, 1 − β2ᵗ) for t = 1, 2, … with Python's float ``**``, as the optimizer
    computes them on the host, flat (2 per step); it stops at the first t where both are
    exactly 1 (then ``exact`` is True: every later t gives 1 too) or after ``steps``."""
    out = []
    for t in range(1, steps + 1):
        d1, d2 = 1 - b1**t, 1 - b2**t
        out += (d1, d2)
        if d1 == 1.0 and d2 == 1.0:
            return np.array(out, np.float64), True
    return np.array(out, np.float64), False


def _device_bias(cp, b1: float, b2: float) -> tuple:
    entry = _bias.get((b1, b2))
    if entry is None:
        host, exact = bias_table(b1, b2)
        entry = _bias[b1, b2] = (cp.asarray(host), len(host) // 2, exact)
    return entry


def _scalar_buffer(cp, counter, dtype):
    key = (_address(counter), np.dtype(dtype))
    buf = _scalar_buffers.get(key)
    if buf is None:
        buf = _scalar_buffers[key] = cp.empty(2, dtype)
    return buf


def update_many(ps, gs, ms, vs, *, b1: float, b2: float, eps: float, c2: float | None = None,
                step: float | None = None, counter=None, lr: float | None = None) -> None:
    """``update`` of every (p, g, m, v) of the lists in ONE kernel launch (two with
    ``counter``), with the same bits. Give c2 = √(1 − β2ᵗ) and step = lr/(1 − β1ᵗ), or
    ``counter`` (a device int64 array of one element, the t of the previous step; advanced
    on the device) and lr. Arrays that are not all C-contiguous and of one float dtype take
    ``update`` one parameter at a time (with ``counter``, its new value is then read back
    to the host)."""
    cp = cupy()
    arrays = list(zip(ps, gs, ms, vs))
    if not arrays:
        return
    dtype = np.dtype(arrays[0][0].dtype)
    if not all(a.flags.c_contiguous and np.dtype(a.dtype) == dtype
               for quad in arrays for a in quad):
        c2, step = step_scalars(b1, b2, c2, step, counter, lr)
        for p, g, m, v in arrays:
            update(p, g, m, v, b1=b1, b2=b2, c2=c2, eps=eps, step=step)
        return
    t = dtype.type
    table, k, n_blocks = _table(cp, arrays)
    if counter is None:
        c2, step = step_scalars(b1, b2, c2, step, counter, lr)
        fn = kernel(SOURCE, KERNELS, "adam_update_many", dtype)
        args = (table, np.int32(k), *_constants(t, b1, b2), t(c2), t(eps), t(step))
    else:
        if lr is None:
            raise TypeError("update_many: a step counter needs lr")
        bias, n_bias, exact = _device_bias(cp, b1, b2)
        scalars = _scalar_buffer(cp, counter, dtype)
        launch_grid(kernel(SOURCE, KERNELS, "adam_step_scalars", dtype), (1,), (1,),
                    (counter, bias, np.int64(n_bias), np.int32(exact), np.float64(b1),
                     np.float64(b2), np.float64(lr), scalars))
        fn = kernel(SOURCE, KERNELS, "adam_update_many_dev", dtype)
        args = (table, np.int32(k), *_constants(t, b1, b2), t(eps), scalars)
    if k:
        launch_grid(fn, (n_blocks,), (THREADS,), args)

