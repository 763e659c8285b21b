"""The fused GPU kernels of conv1d_relu_maxpool (kernels/conv1d_relu_maxpool/cuda_source.py)
at the shapes that take their own paths: columns taken window by window across several
blocks (windows crossing sample boundaries, idle columns when Kp does not divide the tile),
row tiles of every size, odd conv lengths whose last position no window reads, overlapping
and padded windows, the wide-pool fallback; the pool backward with the ReLU mask against
maxpool1d's backward of the masked gy (bitwise); a transposed-view input (the towers' first
block) giving the contiguous input's results bitwise, with no copy and one kernel forward
on the emulator; gradcheck through the op on that view. Every backend runs each claim."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import kernels
import minimtl as mt
import minimtl.functional as F
from kernels import launches
from minimtl.testing import distinct_arrays, pool1d_params
from tests._util import bound, call, kernel, tensor_backend, to_device, to_host
from tests.conftest import HOST_CUDA
from tests.cuda_host import default_cache, patch_cupy_backend, patch_kernels
from tests.kernels.test_conv1d import abs_or_none, f64, out_len, params, sum_err
from tests.kernels.test_conv1d_relu_maxpool import composed, pool_kw, swap

OP = "conv1d_relu_maxpool"
needs_host = pytest.mark.skipif(not HOST_CUDA, reason="needs g++ and no CUDA GPU")

WIDE = [
    # (x shape, w shape, conv params, pool params): several column blocks (tp = 256 or
    # 128 columns, Kp per window), every row tile (O ≤ 32, ≤ 64, > 64 with two row blocks)
    ((5, 3, 130), (7, 3, 3), params(1, 1, 1, 1), dict(kernel_size=3, stride=2, padding=1)),
    ((3, 4, 181), (40, 4, 3), params(), dict(kernel_size=2, stride=2, padding=0)),  # Lc odd
    ((2, 5, 140), (130, 5, 2), params(2, 1, 0, 2), dict(kernel_size=4, stride=1, padding=2)),
    ((4, 2, 99), (3, 2, 5), params(1, 0, 0, 1), dict(kernel_size=2, stride=5, padding=0)),
    # N·Lp = 256 windows: exactly two full blocks of 128 windows (Kp = 2, tp = 256)
    ((4, 3, 130), (5, 3, 3), params(), dict(kernel_size=2, stride=2, padding=0)),
    # a pool wider than the column tile: the composition's fallback
    ((1, 2, 300), (2, 2, 1), params(), dict(kernel_size=260, stride=1, padding=0)),
]


@pytest.mark.parametrize("cl", [False, True], ids=["first", "last"])
@pytest.mark.parametrize("case", WIDE)
def test_wide_shapes_equal_the_composition_and_the_reference(backend, case, cl):
    xs, ws, conv_p, pool_p = case
    rng = np.random.default_rng(11)
    x, w, b = (rng.standard_normal(s) for s in (xs, ws, ws[:1]))
    xin = swap(x) if cl else x
    y_c, a_c, _ = composed(backend, xin, w, b, None, conv_p, pool_p, cl)
    gy = rng.standard_normal(y_c.shape)
    _, _, g_c = composed(backend, xin, w, b, gy, conv_p, pool_p, cl)
    kw = dict(conv_p, **pool_kw(pool_p), channels_last=cl)
    y, argmax = call(OP, backend, "fwd", xin, w, b, **kw)
    np.testing.assert_array_equal(y, y_c)              # the same sums, the same pool
    np.testing.assert_array_equal(argmax, a_c)
    ref = kernels.get(OP, "numpy")
    y_r, a_r = ref.fwd(xin, w, b, **kw)
    np.testing.assert_array_equal(argmax, a_r)
    assert np.abs(y - y_r).max() <= 1e-12 * max(1.0, np.abs(y_r).max())
    grads = call(OP, backend, "bwd", gy, xin, w, y, argmax, **kw)
    g_r = ref.bwd(gy, xin, w, y_r, a_r, **kw)
    for name, g, gc, gr in zip(("gx", "gw", "gb"), grads, g_c, g_r):
        assert g.shape == gr.shape, name
        scale = max(1.0, np.abs(gr).max())
        assert np.abs(g - gr).max() <= 1e-12 * scale and np.abs(g - gc).max() <= 1e-12 * scale


@pytest.mark.parametrize("cl", [False, True], ids=["first", "last"])
def test_the_conv_position_no_window_reads_gets_no_gradient(backend, cl):
    """Lc = 19 under a (2, 2) pool: position 18 is dropped, so its column of gz is 0 and gx
    at the inputs only it reads (S = 1, K = 1: x[:, :, 18]) is exactly 0."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 3, 19))
    w = rng.standard_normal((4, 3, 1))
    kw = dict(params(), pool_size=2, pool_stride=2, pool_padding=0, channels_last=cl)
    xin = swap(x) if cl else x
    y, argmax = call(OP, backend, "fwd", xin, w, None, **kw)
    gx, _, _ = call(OP, backend, "bwd", np.ones_like(y), xin, w, y, argmax, **kw)
    gx = swap(gx) if cl else gx
    np.testing.assert_array_equal(gx[:, :, 18], 0.0)
    assert np.abs(gx[:, :, :18]).sum() > 0


@st.composite
def pool_cases(draw):
    n, o = draw(st.integers(1, 3)), draw(st.integers(1, 4))
    lc = draw(st.integers(1, 16))
    pool_p = draw(pool1d_params(lc))
    return n, o, lc, pool_p


@needs_host
@pytest.mark.parametrize("cl", [False, True], ids=["first", "last"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@given(data=st.data())
def test_masked_pool_backward_is_maxpool1d_backward_of_the_masked_gy_bitwise(cl, dtype, data):
    """relu_maxpool_bwd(gy, y, argmax) = maxpool1d_bwd(gy·[y > 0], argmax), bit for bit (the
    same terms in the same order; skipped terms would have added +0)."""
    n, o, lc, pool_p = data.draw(pool_cases(), label="case")
    shape = (n, lc, o) if cl else (n, o, lc)
    r = np.maximum(data.draw(distinct_arrays(shape, "float64"), label="r"), 0).astype(dtype)
    y, argmax = kernels.get("maxpool1d", "numpy").fwd(r, **pool_p, channels_last=cl)
    gy = np.random.default_rng(0).standard_normal(y.shape).astype(dtype)
    masked = np.where(y > 0, gy, 0).astype(dtype)
    (want,) = kernels.get("maxpool1d", "numpy").bwd(masked, argmax, length=lc, **pool_p,
                                                    channels_last=cl)
    with pytest.MonkeyPatch.context() as mp:
        patch_kernels(mp)
        from kernels._cuda import launch
        from kernels.conv1d_relu_maxpool import cupy_cuda as mod

        got = np.empty_like(want)
        total = got.size
        inner = o if cl else 1                 # the kernel's (R, Lc, I) view
        fn = mod.kernel(mod.SOURCE, mod.KERNELS, "relu_maxpool_bwd", dtype)
        launch(fn, total, (gy, y, np.ascontiguousarray(argmax, np.int32), got,
                           np.int64(total), *(np.int32(v) for v in (
                               lc, y.shape[1 if cl else 2], inner, pool_p["kernel_size"],
                               pool_p["stride"], pool_p["padding"]))))
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_a_transposed_view_input_gives_the_contiguous_results_bitwise(backend, dtype):
    """The towers' first block: x is (N, L, C) data transposed to (N, C, L), read in place by
    the CUDA kernels, copied by the others: the same numbers either way."""
    rng = np.random.default_rng(4)
    data = rng.standard_normal((3, 21, 5)).astype(dtype)               # (N, L, C)
    w = rng.standard_normal((6, 5, 3)).astype(dtype)
    b = rng.standard_normal(6).astype(dtype)
    kw = dict(params(2, 1, 0, 1), pool_size=3, pool_stride=2, pool_padding=1)
    mod = kernel(OP, backend)
    dev = to_device(data, backend)
    view = dev.transpose(0, 2, 1)
    assert not view.flags.c_contiguous
    contiguous = to_device(np.ascontiguousarray(data.transpose(0, 2, 1)), backend)
    wd, bd = to_device(w, backend), to_device(b, backend)
    y1, a1 = to_host(mod.fwd(view, wd, bd, **kw))
    y2, a2 = to_host(mod.fwd(contiguous, wd, bd, **kw))
    np.testing.assert_array_equal(y1, y2)
    np.testing.assert_array_equal(a1, a2)
    gy = rng.standard_normal(y1.shape).astype(dtype)
    gyd, yd, ad = (to_device(a, backend) for a in (gy, y1, a1))
    for need_gx in (True, False):
        g1 = to_host(mod.bwd(gyd, view, wd, yd, ad, **kw, need_gx=need_gx))
        g2 = to_host(mod.bwd(gyd, contiguous, wd, yd, ad, **kw, need_gx=need_gx))
        for u, v in zip(g1, g2):
            if v is None:
                assert u is None
            else:
                np.testing.assert_array_equal(u, v)
    ref = kernels.get(OP, "numpy")
    y_r, a_r = ref.fwd(f64(data.transpose(0, 2, 1)), f64(w), f64(b), **kw)
    np.testing.assert_array_equal(a1, a_r)
    lc = out_len(21, 3, kw)
    y_abs = kernels.get("conv1d", "numpy").fwd(abs_or_none(data.transpose(0, 2, 1)),
                                               abs_or_none(w), abs_or_none(b),
                                               **params(2, 1, 0, 1))
    scale = np.take_along_axis(y_abs, a_r.astype(np.int64), axis=2)
    assert lc == y_abs.shape[2]
    assert sum_err(y1, y_r, scale) <= bound(dtype, "sum", 5 * 3 + 1)


@needs_host
def test_the_block_launches_one_kernel_forward_and_copies_no_transposed_input(monkeypatch):
    patch_cupy_backend(monkeypatch, default_cache(), count_launches=True)
    rng = np.random.default_rng(8)
    x = mt.tensor(rng.standard_normal((2, 12, 4)).astype(np.float32), backend="cupy")
    w = mt.tensor(rng.standard_normal((5, 4, 3)).astype(np.float32), backend="cupy",
                  requires_grad=True)
    b = mt.tensor(np.zeros(5, np.float32), backend="cupy", requires_grad=True)
    with launches.count() as fwd:
        y = F.conv1d_relu_maxpool1d(x.transpose(0, 2, 1), w, b, pool_size=2)
    assert fwd.by_kernel == {"conv1d_relu_maxpool_fwd": 1}
    loss = y.sum()
    with launches.count() as bwd:
        loss.backward()
    ours = {k: v for k, v in bwd.by_kernel.items() if not k.startswith("cupy.")}
    assert ours == {"relu_maxpool_bwd": 1, "conv1d_bwd_weight": 1}
    assert "cupy.where" not in bwd.by_kernel and "cupy.greater" not in bwd.by_kernel


def test_gradcheck_through_the_op_on_a_transposed_view(backend, monkeypatch):
    be = tensor_backend(backend, monkeypatch)
    rng = np.random.default_rng(9)
    x = rng.permutation(2 * 11 * 3).reshape(2, 11, 3) * 0.05 - 0.8     # (N, L, C), distinct
    w = rng.permutation(4 * 3 * 3).reshape(4, 3, 3) * 0.03 - 0.5
    b = rng.permutation(4) * 0.1 - 0.1
    ts = [mt.tensor(a, backend=be, requires_grad=True) for a in (x, w, b)]

    def fn(x, w, b):
        return F.conv1d_relu_maxpool1d(x.transpose(0, 2, 1), w, b, padding=1, pool_size=3,
                                       pool_stride=2, pool_padding=1)

    assert mt.gradcheck(fn, ts)
