"""Kernel-level tests of the tanh-RNN family (kernels/rnn): reference vs naive loops, every
backend vs the reference, finite differences, the SPEC's properties, PyTorch as an oracle,
signature parity and an nvcc compile of the CUDA source."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import kernels
from kernels.rnn import reference
from minimtl.testing import arrays
from tests._util import agreement_err, bound, call, moderate_arrays, rel_err

OP = "rnn"
NAMES = ("x", "h0", "w_ih", "w_hh", "b_ih", "b_hh")
GRAD_NAMES = ("gx", "gh0", "gw_ih", "gw_hh", "gb_ih", "gb_hh")


def shapes(N, T, D, H):
    """Shapes of (x, h0, w_ih, w_hh, b_ih, b_hh)."""
    return ((N, T, D), (N, H), (H, D), (H, H), (H,), (H,))


def random_inputs(rng, N, T, D, H, dtype=np.float64, scale=None):
    """x ~ N(0, 1), h0 in [-1, 1], weights and biases in [-scale, scale] (PyTorch's
    1/√H by default)."""
    scale = 1 / math.sqrt(H) if scale is None else scale
    sizes = shapes(N, T, D, H)
    out = [rng.standard_normal(sizes[0]), rng.uniform(-1, 1, sizes[1])]
    out += [rng.uniform(-scale, scale, s) for s in sizes[2:]]
    return [a.astype(dtype) for a in out]


# Agreement tests draw x, h0 in [-1, 1] and weights, biases in [-0.25, 0.25]: with D, H ≤ 4
# every pre-activation stays within ±2.5. Where tanh saturates, 1 − h² is computed from an
# h rounded to the working precision, so a gradient whose every entry went through a
# saturated unit has no meaningful *relative* error (in float32, 1 − tanh²(4.5) = 5e-4 is
# off by 1e-4 relative); the wide-range fixed case below checks the forward pass there.
# Magnitudes below 2⁻²⁰ are drawn as 0: products of several tiny float32 values underflow
# where the float64 reference does not.
@st.composite
def rnn_case(draw, dtype, max_n=3, max_t=6, max_d=4, max_h=4, w=0.25):
    """((x, h0, w_ih, w_hh, b_ih, b_hh), ghs) of small random shapes."""
    N, T, D, H = (draw(st.integers(1, m)) for m in (max_n, max_t, max_d, max_h))
    sizes = shapes(N, T, D, H)
    inputs = [draw(moderate_arrays(s, dtype, 1)) for s in sizes[:2]]
    inputs += [draw(moderate_arrays(s, dtype, w)) for s in sizes[2:]]
    ghs = draw(moderate_arrays((N, T, H), dtype, 1))
    return inputs, ghs


# ----------------------------------------------------------------------------------------
# (a) the reference against naive scalar loops


def naive_fwd(x, h0, w_ih, w_hh, b_ih, b_hh):
    """h_t = tanh(W_ih x_t + b_ih + W_hh h_{t−1} + b_hh), one scalar at a time."""
    N, T, D = x.shape
    H = h0.shape[1]
    hs = np.zeros((N, T, H))
    for n in range(N):
        h = [float(v) for v in h0[n]]
        for t in range(T):
            new = []
            for j in range(H):
                a = b_ih[j] + b_hh[j]
                a += sum(w_ih[j, d] * x[n, t, d] for d in range(D))
                a += sum(w_hh[j, k] * h[k] for k in range(H))
                new.append(math.tanh(a))
            h = new
            hs[n, t] = h
    return hs


def naive_grads(ghs, x, h0, w_ih, w_hh, b_ih, b_hh):
    """Every gradient by backpropagation through time, one scalar at a time."""
    N, T, D = x.shape
    H = h0.shape[1]
    hs = naive_fwd(x, h0, w_ih, w_hh, b_ih, b_hh)
    gx, gh0 = np.zeros_like(x), np.zeros_like(h0)
    gw_ih, gw_hh = np.zeros_like(w_ih), np.zeros_like(w_hh)
    gb_ih, gb_hh = np.zeros_like(b_ih), np.zeros_like(b_hh)
    for n in range(N):
        g = [0.0] * H  # dℓ/dh_t arriving from step t+1
        for t in reversed(range(T)):
            hprev = h0[n] if t == 0 else hs[n, t - 1]
            gprev = [0.0] * H
            for j in range(H):
                da = (g[j] + ghs[n, t, j]) * (1 - hs[n, t, j] ** 2)  # through tanh
                gb_ih[j] += da
                gb_hh[j] += da
                for d in range(D):
                    gw_ih[j, d] += da * x[n, t, d]
                    gx[n, t, d] += da * w_ih[j, d]
                for k in range(H):
                    gw_hh[j, k] += da * hprev[k]
                    gprev[k] += da * w_hh[j, k]
            g = gprev
        gh0[n] = g
    return gx, gh0, gw_ih, gw_hh, gb_ih, gb_hh


@pytest.mark.parametrize("N,T,D,H", [(2, 3, 3, 2), (1, 1, 1, 1), (3, 4, 2, 3)])
def test_reference_forward_equals_naive_loops(N, T, D, H):
    rng = np.random.default_rng(N * 100 + T * 10 + H)
    inputs = random_inputs(rng, N, T, D, H, scale=1.0)
    assert rel_err(reference.fwd(*inputs), naive_fwd(*inputs)) < 1e-12


@pytest.mark.parametrize("N,T,D,H", [(2, 3, 3, 2), (1, 1, 1, 1), (3, 4, 2, 3)])
def test_reference_backward_equals_naive_loops(N, T, D, H):
    rng = np.random.default_rng(7 + N * 100 + T * 10 + H)
    inputs = random_inputs(rng, N, T, D, H, scale=1.0)
    ghs = rng.standard_normal((N, T, H))
    hs = reference.fwd(*inputs)
    got = reference.bwd(ghs, *inputs[:4], hs)
    want = naive_grads(ghs, *inputs)
    assert isinstance(got, tuple) and len(got) == 6
    for name, a, b in zip(GRAD_NAMES, got, want):
        assert rel_err(a, b) < 1e-12, name


def test_reference_rejects_inconsistent_shapes():
    rng = np.random.default_rng(0)
    x, h0, w_ih, w_hh, b_ih, b_hh = random_inputs(rng, 2, 3, 4, 5)
    with pytest.raises(ValueError, match="rnn"):
        reference.fwd(x, h0, w_ih[:, :3], w_hh, b_ih, b_hh)
    with pytest.raises(ValueError, match="rnn"):
        reference.fwd(x, h0[:1], w_ih, w_hh, b_ih, b_hh)
    with pytest.raises(ValueError, match="rnn"):
        reference.fwd(x, h0, w_ih, w_hh[:, :4], b_ih, b_hh)
    with pytest.raises(ValueError, match="rnn"):
        reference.fwd(x[0], h0, w_ih, w_hh, b_ih, b_hh)


# ----------------------------------------------------------------------------------------
# (b) every backend against the reference computed in float64 on the same values


def _check_against_reference(backend, inputs, ghs, check_backward=True):
    """Forward and backward of ``backend`` against the reference in float64 on the same
    values (``agreement_err`` against TESTING.md's bound), dtypes, nothing written."""
    dtype = inputs[0].dtype
    copies = [a.copy() for a in inputs]
    hs = call(OP, backend, "fwd", *inputs)
    inputs64 = [a.astype(np.float64) for a in inputs]
    abs64 = [np.abs(a) for a in inputs64]
    ref_hs = reference.fwd(*inputs64)
    tol = bound(dtype, "rnn")
    assert hs.dtype == dtype
    assert hs.shape == ref_hs.shape
    assert agreement_err(hs, ref_hs, reference.fwd(*abs64)) <= tol
    if check_backward:
        saved = [ghs.copy(), hs.copy()]
        grads = call(OP, backend, "bwd", ghs, *inputs[:4], hs)
        for a, b in zip((ghs, hs), saved):
            np.testing.assert_array_equal(a, b)  # the saved arrays are not written either
        ghs64 = ghs.astype(np.float64)
        ref_grads = reference.bwd(ghs64, *inputs64[:4], ref_hs)
        mags = reference.bwd(np.abs(ghs64), *abs64[:4], np.abs(ref_hs))
        assert isinstance(grads, tuple) and len(grads) == 6
        for name, got, want, mag in zip(GRAD_NAMES, grads, ref_grads, mags):
            assert got.dtype == dtype, name
            assert agreement_err(got, want, mag) <= tol, name
    for a, b in zip(inputs, copies):
        np.testing.assert_array_equal(a, b)  # inputs never written


@given(st.data())
def test_backend_matches_reference(backend, data):
    dtype = data.draw(st.sampled_from(["float32", "float64"]))
    inputs, ghs = data.draw(rnn_case(dtype))
    _check_against_reference(backend, inputs, ghs)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize(
    "N,T,D,H",
    [
        (1, 1, 1, 1),  # one step, one unit
        (5, 10, 7, 9),  # T = 10; N not a multiple of the row blocks
        (3, 4, 2, 33),  # H across a warp boundary
        (2, 3, 4, 300),  # H·rows > threads per block; W_hh too big for shared memory
        (1100, 2, 3, 5),  # several batch rows per CUDA block
    ],
)
def test_backend_matches_reference_fixed_shapes(backend, dtype, N, T, D, H):
    rng = np.random.default_rng(N + 10 * T + 100 * D + 1000 * H)
    inputs = random_inputs(rng, N, T, D, H, dtype)
    ghs = rng.uniform(-1, 1, (N, T, H)).astype(dtype)
    _check_against_reference(backend, inputs, ghs)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_backend_forward_matches_reference_when_units_saturate(backend, dtype):
    rng = np.random.default_rng(3)
    inputs = [rng.uniform(-10, 10, s).astype(dtype) for s in shapes(3, 5, 4, 4)]
    _check_against_reference(backend, inputs, None, check_backward=False)


def test_backend_handles_empty_batch(backend):
    rng = np.random.default_rng(0)
    x, h0, w_ih, w_hh, b_ih, b_hh = random_inputs(rng, 0, 3, 2, 4)
    hs = call(OP, backend, "fwd", x, h0, w_ih, w_hh, b_ih, b_hh)
    assert hs.shape == (0, 3, 4)
    grads = call(OP, backend, "bwd", np.zeros((0, 3, 4)), x, h0, w_ih, w_hh, hs)
    for g, a in zip(grads, (x, h0, w_ih, w_hh, b_ih, b_hh)):
        assert g.shape == a.shape
    for g in grads[2:]:
        np.testing.assert_array_equal(g, 0)


# ----------------------------------------------------------------------------------------
# (c) finite differences, float64: <gy, (f(v + εu) − f(v − εu)) / 2ε> vs <bwd(gy), u>


@pytest.mark.parametrize("backend_name", ["numpy", "numba"])
@pytest.mark.parametrize("N,T,D,H", [(2, 4, 3, 3), (1, 1, 2, 1)])
def test_backward_matches_finite_differences(backend_name, N, T, D, H):
    rng = np.random.default_rng(11 + T)
    k = kernels.get(OP, backend_name)
    inputs = random_inputs(rng, N, T, D, H, scale=1.0)
    ghs = rng.standard_normal((N, T, H))
    grads = k.bwd(ghs, *inputs[:4], k.fwd(*inputs))
    eps = 1e-6
    for i, name in enumerate(NAMES):
        u = rng.standard_normal(inputs[i].shape)
        plus, minus = list(inputs), list(inputs)
        plus[i] = inputs[i] + eps * u
        minus[i] = inputs[i] - eps * u
        numeric = np.sum(ghs * (k.fwd(*plus) - k.fwd(*minus))) / (2 * eps)
        analytic = np.sum(grads[i] * u)
        assert abs(numeric - analytic) <= 1e-7 * max(abs(analytic), 1.0), name


# ----------------------------------------------------------------------------------------
# (d) properties, on every backend


@given(st.data())
def test_zero_weights_give_zero_states(backend, data):
    """w = b = 0 ⇒ a_t = 0 ⇒ h_t = tanh(0) = 0 for every t, whatever x and h0."""
    dtype = data.draw(st.sampled_from(["float32", "float64"]))
    N, T, D, H = (data.draw(st.integers(1, m)) for m in (3, 8, 3, 4))
    x = data.draw(arrays((N, T, D), dtype))
    h0 = data.draw(arrays((N, H), dtype))
    zeros = [np.zeros(s, dtype) for s in shapes(N, T, D, H)[2:]]
    hs = call(OP, backend, "fwd", x, h0, *zeros)
    np.testing.assert_array_equal(hs, np.zeros((N, T, H), dtype))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_one_step_equals_one_rnn_cell(backend, dtype):
    rng = np.random.default_rng(5)
    N, D, H = 3, 4, 5
    inputs = random_inputs(rng, N, 1, D, H, dtype, scale=1.0)
    hs = call(OP, backend, "fwd", *inputs)
    x, h0, w_ih, w_hh, b_ih, b_hh = (a.astype(np.float64) for a in inputs)
    h1 = np.tanh(x[:, 0] @ w_ih.T + b_ih + h0 @ w_hh.T + b_hh)
    assert hs.shape == (N, 1, H)
    assert rel_err(hs[:, 0], h1) <= bound(dtype, "rnn")


@given(st.data())
def test_future_inputs_do_not_change_past_states(backend, data):
    inputs, _ = data.draw(rnn_case("float64"))
    x = inputs[0]
    t = data.draw(st.integers(0, x.shape[1] - 1))
    x2 = x.copy()
    x2[:, t + 1 :] = data.draw(arrays(x[:, t + 1 :].shape, "float64", -1, 1))
    hs = call(OP, backend, "fwd", *inputs)
    hs2 = call(OP, backend, "fwd", x2, *inputs[1:])
    np.testing.assert_allclose(hs2[:, : t + 1], hs[:, : t + 1], rtol=0, atol=1e-14)


@given(st.data())
def test_batch_rows_are_independent(backend, data):
    inputs, ghs = data.draw(rnn_case("float64", max_n=5))
    x, h0, w_ih, w_hh, b_ih, b_hh = inputs
    hs = call(OP, backend, "fwd", *inputs)
    gx, gh0, *_ = call(OP, backend, "bwd", ghs, x, h0, w_ih, w_hh, hs)
    for n in range(x.shape[0]):
        one = (x[n : n + 1], h0[n : n + 1], w_ih, w_hh, b_ih, b_hh)
        hs_n = call(OP, backend, "fwd", *one)
        gx_n, gh0_n, *_ = call(OP, backend, "bwd", ghs[n : n + 1], *one[:4], hs_n)
        np.testing.assert_allclose(hs_n[0], hs[n], rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(gx_n[0], gx[n], rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(gh0_n[0], gh0[n], rtol=1e-12, atol=1e-14)


@given(st.data())
def test_states_stay_inside_unit_interval(backend, data):
    """|tanh| < 1: strict while the pre-activations are moderate (tanh rounds to ±1 beyond
    about 9 in float32 and 19 in float64); |h| ≤ 1 for any input."""
    inputs, _ = data.draw(rnn_case("float64", w=1.0))
    hs = call(OP, backend, "fwd", *inputs)
    assert np.all(np.abs(hs) < 1)
    dtype = data.draw(st.sampled_from(["float32", "float64"]))
    sizes = shapes(*inputs[0].shape, inputs[1].shape[1])
    wide = [data.draw(arrays(s, dtype, -10, 10)) for s in sizes]
    hs = call(OP, backend, "fwd", *wide)
    assert np.all(np.abs(hs) <= 1)


# ----------------------------------------------------------------------------------------
# (e) PyTorch as an oracle, weight for weight


@pytest.mark.parametrize("N,T,D,H", [(3, 5, 4, 6), (1, 1, 3, 2), (4, 7, 1, 3), (2, 3, 5, 5)])
def test_matches_torch_rnn(backend, N, T, D, H):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(N + 7 * T + 31 * H)
    torch.manual_seed(N + T)
    rnn = torch.nn.RNN(D, H, nonlinearity="tanh", batch_first=True).double()
    params = (rnn.weight_ih_l0, rnn.weight_hh_l0, rnn.bias_ih_l0, rnn.bias_hh_l0)
    weights = [p.detach().numpy().copy() for p in params]
    x = rng.standard_normal((N, T, D))
    h0 = rng.uniform(-1, 1, (N, H))
    ghs = rng.standard_normal((N, T, H))
    gh_final = rng.standard_normal((N, H))

    xt = torch.tensor(x, requires_grad=True)
    h0t = torch.tensor(h0[None], requires_grad=True)
    out, hn = rnn(xt, h0t)
    (torch.sum(out * torch.tensor(ghs)) + torch.sum(hn[0] * torch.tensor(gh_final))).backward()

    hs = call(OP, backend, "fwd", x, h0, *weights)
    assert rel_err(hs, out.detach().numpy()) < 1e-10
    assert rel_err(hs[:, -1], hn.detach().numpy()[0]) < 1e-10
    g_all = ghs.copy()
    g_all[:, -1] += gh_final  # the final state is hs[:, -1]
    grads = call(OP, backend, "bwd", g_all, x, h0, *weights[:2], hs)
    want = [xt.grad.numpy(), h0t.grad.numpy()[0]] + [p.grad.numpy() for p in params]
    for name, got, w in zip(GRAD_NAMES, grads, want):
        assert rel_err(got, w) < 1e-10, name


# ----------------------------------------------------------------------------------------
# (f) signature parity and (g) the CUDA source compiles




